package broker

import (
	"strings"
	"testing"
	"time"
)

// TestParseAPIClientSettings: the YAML keys of this feature decode
// strictly (api_tokens, step-up inline in a route and the default, the
// token relay inline in an upstream, forward_auth), and their problems
// come out of ParseConfig's validation named by field, with the line.
func TestParseAPIClientSettings(t *testing.T) {
	good := `
providers:
  - id: corp
    issuer: https://sso.example.com/realms/corp
    client_id: broker
    client_secret: s
    api_tokens:
      audiences: [reports-api]
      scopes: [reports.read]
      introspection: true
      introspection_cache: 10s
routes:
  - path: /billing/
    max_age: 10m
    acr_values: [mfa]
default:
  max_age: 12h
upstreams:
  - path: /
    url: http://127.0.0.1:8080
    pass_access_token: Authorization
    pass_id_token: X-Id-Token
forward_auth:
  pass_access_token: X-Forwarded-Access-Token
  hosts: [reports.example.com]
`
	cfg, err := ParseConfig("broker.yaml", []byte(good), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := cfg.Providers[0].APITokens
	switch {
	case a == nil || a.Audiences[0] != "reports-api" || !a.Introspection || a.IntrospectionCache != 10*time.Second:
		t.Errorf("api_tokens: %+v", a)
	case cfg.Routes[0].MaxAge != 10*time.Minute || cfg.Routes[0].ACRValues[0] != "mfa" || cfg.Default.MaxAge != 12*time.Hour:
		t.Errorf("step-up: %+v %+v", cfg.Routes[0].StepUp, cfg.Default.StepUp)
	case cfg.Upstreams[0].PassAccessToken != "Authorization" || cfg.Upstreams[0].PassIDToken != "X-Id-Token":
		t.Errorf("upstream tokens: %+v", cfg.Upstreams[0].Tokens)
	case cfg.ForwardAuth.PassAccessToken != "X-Forwarded-Access-Token" || cfg.ForwardAuth.Hosts[0] != "reports.example.com":
		t.Errorf("forward_auth: %+v", cfg.ForwardAuth)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"providers: [{id: c, issuer: https://a.example, client_id: b, client_secret: s, api_tokens: {scopes: [x]}}]", "providers[0].api_tokens.audiences: is required"},
		{"providers: [{id: c, issuer: https://a.example, client_id: b, client_secret: s, api_tokens: {audiences: [x], audience: y}}]", "audience"},
		{"routes: [{path: /x/, max_age: -1m}]\nproviders: [{id: c, issuer: https://a.example, client_id: b, client_secret: s}]", "routes[0].max_age"},
		{"upstreams: [{path: /, url: 'http://127.0.0.1:1', pass_access_token: 'Set-Cookie'}]\nproviders: [{id: c, issuer: https://a.example, client_id: b, client_secret: s}]", "upstreams[0].pass_access_token"},
	} {
		cfg, err := ParseConfig("broker.yaml", []byte(tc.yaml), func(string) (string, bool) { return "", false })
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
