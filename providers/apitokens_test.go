package providers

import (
	"strings"
	"testing"
	"time"
)

// TestAPITokensConfig: api_tokens' problems are named by field, and only
// OpenID providers may accept API tokens.
func TestAPITokensConfig(t *testing.T) {
	base := Config{ID: "kc", Issuer: "https://idp.example", ClientID: "broker", ClientSecret: "s"}
	for _, tc := range []struct {
		name string
		cfg  func(Config) Config
		want string
	}{
		{"no audiences", func(c Config) Config { c.APITokens = &APITokensConfig{}; return c }, "api_tokens.audiences: is required"},
		{"empty audience", func(c Config) Config { c.APITokens = &APITokensConfig{Audiences: []string{""}}; return c }, "api_tokens.audiences[0]: must not be empty"},
		{"bad scope", func(c Config) Config {
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}, Scopes: []string{"a b"}}
			return c
		}, "api_tokens.scopes[0]"},
		{"negative cache", func(c Config) Config {
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}, IntrospectionCache: -time.Second}
			return c
		}, "api_tokens.introspection_cache"},
		{"introspection without a secret", func(c Config) Config {
			c.ClientSecret, c.TokenEndpointAuthMethod = "", AuthNone
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}, Introspection: true}
			return c
		}, "api_tokens.introspection: needs the provider's client_secret"},
		{"own client id as an audience", func(c Config) Config {
			c.APITokens = &APITokensConfig{Audiences: []string{"a", "BROKER"}}
			return c
		}, `api_tokens.audiences[1]: "BROKER" is the provider's own client_id`},
		{"clients without introspection", func(c Config) Config {
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}, Clients: []string{"cli"}}
			return c
		}, "api_tokens.clients: is only used with introspection"},
		{"empty client", func(c Config) Config {
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}, Introspection: true, Clients: []string{""}}
			return c
		}, "api_tokens.clients[0]: must not be empty"},
		{"oauth2", func(c Config) Config {
			c.Type, c.AuthorizationEndpoint, c.TokenEndpoint, c.UserinfoEndpoint = TypeOAuth2, "https://a.example/a", "https://a.example/t", "https://a.example/u"
			c.APITokens = &APITokensConfig{Audiences: []string{"a"}}
			return c
		}, "api_tokens: is not supported by providers of type oauth2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg(base).validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
	ok := base
	ok.APITokens = &APITokensConfig{Audiences: []string{"api://reports"}, Scopes: []string{"reports.read"}, Introspection: true}
	if err := ok.validate(); err != nil {
		t.Errorf("valid api_tokens: %v", err)
	}
	ok.APITokens = &APITokensConfig{Audiences: []string{"broker"}, RequireATJWT: true, Introspection: true, Clients: []string{"broker"}}
	if err := ok.validate(); err != nil {
		t.Errorf("the client id as an audience with require_at_jwt: %v", err)
	}
}

// TestCheckStepUp: max_age needs an auth_time within it (30 s of skew),
// acr_values one of the values.
func TestCheckStepUp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	five := 5 * time.Minute
	for _, tc := range []struct {
		name   string
		id     Identity
		maxAge *time.Duration
		acr    []string
		ok     bool
	}{
		{"nothing asked", Identity{}, nil, nil, true},
		{"recent", Identity{AuthnTime: now.Add(-4 * time.Minute)}, &five, nil, true},
		{"within the skew", Identity{AuthnTime: now.Add(-five - 20*time.Second)}, &five, nil, true},
		{"too old", Identity{AuthnTime: now.Add(-6 * time.Minute)}, &five, nil, false},
		{"no auth_time", Identity{}, &five, nil, false},
		{"acr listed", Identity{ACR: "mfa"}, nil, []string{"pwd+otp", "mfa"}, true},
		{"acr other", Identity{ACR: "pwd"}, nil, []string{"mfa"}, false},
		{"no acr", Identity{}, nil, []string{"mfa"}, false},
	} {
		if err := CheckStepUp(tc.id, tc.maxAge, tc.acr, now); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
