package broker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestBearerOpaqueTokenNeverSentToAnotherProvider: an opaque token of
// beta's users must never be sent to alpha's introspection endpoint (alpha
// is another organisation's IdP in a multi-IdP broker). An opaque token
// names no issuer, so at most one provider may introspect: two are refused
// at start-up, naming the field; with beta introspecting and alpha
// accepting JWTs only, alpha never sees beta's token.
func TestBearerOpaqueTokenNeverSentToAnotherProvider(t *testing.T) {
	p := func(id string) providers.Config {
		return providers.Config{ID: id, Issuer: "https://" + id + ".example", ClientID: "broker-" + id, ClientSecret: "s",
			APITokens: &providers.APITokensConfig{Audiences: []string{"api://" + id}, Introspection: true}}
	}
	cfg := Config{Providers: []providers.Config{p("alpha"), p("beta")}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `providers[1].api_tokens.introspection: providers[0] ("alpha") introspects already`) {
		t.Errorf("two introspecting providers: %v", err)
	}

	echo := headerEcho(t)
	e := newEnv(t,
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://alpha"}}),
		withAPITokens("beta", providers.APITokensConfig{Audiences: []string{"api://beta"}, Introspection: true, Clients: []string{"broker-beta"}}),
		withConfig(func(c *Config) {
			c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL, Tokens: TokenRelay{PassAccessToken: "X-Access-Token"}}}
		}))
	var mu sync.Mutex
	var seenByAlpha []string
	d := e.idps["alpha"].srv.Config.Handler.(*deferred)
	next := d.Handler
	d.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "introspect") {
			_ = r.ParseForm()
			mu.Lock()
			seenByAlpha = append(seenByAlpha, r.PostForm.Get("token"))
			mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
	e.login("beta", "alice", "/")
	tok := e.storedTokens(e.client).AccessToken
	h := echoedHeaders(t, e.request(nil, http.MethodGet, "/data", bearerHeader(tok)))
	if h.Get(HeaderUser) != "beta:beta-alice" {
		t.Fatalf("user %q", h.Get(HeaderUser))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seenByAlpha {
		if s == tok {
			t.Errorf("beta's user's access token was sent to alpha's introspection endpoint")
		}
	}
}

// TestTokenRelayPublicRouteDropsClientAuthorization: an upstream that asks for the
// user's access token in Authorization must get only the broker's; on a
// public route an anonymous client's own Authorization reaches it.
func TestTokenRelayPublicRouteDropsClientAuthorization(t *testing.T) {
	api := headerEcho(t)
	e := newEnv(t, withConfig(func(c *Config) {
		c.Routes = []Route{{Path: "/api/public/", AccessRule: AccessRule{Public: true}}}
		c.Upstreams = []UpstreamConfig{{Path: "/api/", URL: api.URL, Tokens: TokenRelay{PassAccessToken: "Authorization"}}}
	}))
	h := echoedHeaders(t, e.request(nil, http.MethodGet, "/api/public/x", map[string]string{"Authorization": "Bearer forged"}))
	if got := h.Get("Authorization"); got != "" {
		t.Errorf("the app that asked for the user's access token in Authorization got the client's %q", got)
	}
}

// TestBearerIDTokenRefusedAsAccessToken: an ID token (aud = the
// provider's client id, typ JWT, no nonce, no at_hash: a code-flow ID
// token without nonce, or a refreshed one at many IdPs) must not pass as
// an API access token. api_tokens.audiences naming the provider's own
// client id is refused at start-up, naming the field; with require_at_jwt
// it is allowed, and then the ID token (typ JWT) is refused while an
// at+jwt access token with the same claims passes.
func TestBearerIDTokenRefusedAsAccessToken(t *testing.T) {
	cfg := Config{Providers: []providers.Config{{ID: "alpha", Issuer: "https://alpha.example", ClientID: "broker-alpha", ClientSecret: "s",
		APITokens: &providers.APITokensConfig{Audiences: []string{"api://alpha", "broker-alpha"}}}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `api_tokens.audiences[1]: "broker-alpha" is the provider's own client_id`) {
		t.Errorf("the client id as an audience: %v", err)
	}

	echo := headerEcho(t)
	e := newEnv(t,
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"broker-alpha"}, RequireATJWT: true}),
		withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL}} }))
	now := time.Now()
	idClaims := map[string]any{"iss": e.idps["alpha"].srv.URL, "sub": "alpha-alice", "aud": "broker-alpha", "azp": "broker-alpha",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Unix(), "email": "alice@example.com", "email_verified": true}
	tok := e.idps["alpha"].tamper.Mint(idClaims, "", "JWT")
	resp := e.request(nil, http.MethodGet, "/x", bearerHeader(tok))
	if resp.StatusCode == http.StatusOK {
		t.Errorf("an ID token was accepted as an access token: user %q", echoedHeaders(t, resp).Get(HeaderUser))
	}
	at := e.idps["alpha"].tamper.Mint(idClaims, "", "at+jwt")
	if resp := e.request(nil, http.MethodGet, "/x", bearerHeader(at)); resp.StatusCode != http.StatusOK {
		t.Errorf("control: an at+jwt access token was refused: %d", resp.StatusCode)
	}
}

// TestForwardAuthTokensOnlyToTrustedProxy: a browser (not a trusted
// proxy) calling /oauth2/auth itself gets the user's access and ID tokens
// in the answer's headers when forward_auth.hosts is unset: any script on
// the broker's origin (an upstream that did not ask for tokens) can read
// them with fetch('/oauth2/auth').
func TestForwardAuthTokensOnlyToTrustedProxy(t *testing.T) {
	echo := headerEcho(t)
	e := newEnv(t, withConfig(func(c *Config) {
		c.ForwardAuth = ForwardAuthConfig{TokenRelay: TokenRelay{PassAccessToken: "X-Forwarded-Access-Token", PassIDToken: "X-Forwarded-Id-Token"}}
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL}} // an app that did not ask
	}))
	if w := e.server.cfg.Warnings(); !slices.ContainsFunc(w, func(s string) bool {
		return strings.HasPrefix(s, "forward_auth: tokens are asked for but trusted_proxies.from is empty")
	}) {
		t.Errorf("no warning that forward-auth answers will carry no tokens: %q", w)
	}
	e.login("alpha", "alice", "/")
	resp := e.request(e.client, http.MethodGet, "/oauth2/auth", nil) // no trusted proxy: a page's fetch
	if resp.Header.Get("X-Forwarded-Access-Token") != "" || resp.Header.Get("X-Forwarded-Id-Token") != "" {
		t.Errorf("a direct, untrusted caller of /oauth2/auth got the user's tokens (%d)", resp.StatusCode)
	}
}

// TestBearerIntrospectionWithoutAudienceNeedsAllowedClient: an active introspection answer
// without aud, for a token another client of the IdP obtained (a
// third-party app the user authorized), is accepted as the user.
func TestBearerIntrospectionWithoutAudienceNeedsAllowedClient(t *testing.T) {
	echo := headerEcho(t)
	e := newEnv(t,
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://reports"}, Introspection: true}),
		withConfig(func(c *Config) {
			c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL, Tokens: TokenRelay{PassAccessToken: "X-Access-Token"}}}
		}))
	interceptIdP(e, "alpha", "/oauth/introspect", func(w http.ResponseWriter, answer *httptest.ResponseRecorder) {
		var m map[string]any
		_ = json.Unmarshal(answer.Body.Bytes(), &m)
		if m["active"] == true {
			delete(m, "aud")
			m["client_id"] = "third-party-app"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m)
	})
	e.login("alpha", "alice", "/")
	tok := e.storedTokens(e.client).AccessToken
	if tok == "" {
		t.Fatal("no access token")
	}
	if resp := e.request(nil, http.MethodGet, "/data", bearerHeader(tok)); resp.StatusCode == http.StatusOK {
		t.Errorf("a token of another client, no aud in the introspection answer, was accepted as %q", echoedHeaders(t, resp).Get(HeaderUser))
	}
}

// TestBearerIntrospectionRefusesOtherTokenTypes: an active introspection
// answer for a refresh token (token_type refresh_token) is refused, and a
// redirect from the introspection endpoint is not followed (a 307 would
// send the token again, elsewhere).
func TestBearerIntrospectionRefusesOtherTokenTypes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(w http.ResponseWriter, answer *httptest.ResponseRecorder)
	}{
		{"refresh token", func(w http.ResponseWriter, answer *httptest.ResponseRecorder) {
			var m map[string]any
			_ = json.Unmarshal(answer.Body.Bytes(), &m)
			m["token_type"] = "refresh_token"
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(m)
		}},
		{"redirect", func(w http.ResponseWriter, _ *httptest.ResponseRecorder) {
			w.Header().Set("Location", "/oauth/introspect-elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := headerEcho(t)
			e := newEnv(t,
				withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://alpha"}, Introspection: true, Clients: []string{"broker-alpha"}}),
				withConfig(func(c *Config) {
					c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL, Tokens: TokenRelay{PassAccessToken: "X-Access-Token"}}}
				}))
			interceptIdP(e, "alpha", "/oauth/introspect", tc.rewrite)
			var mu sync.Mutex
			followed := false
			interceptIdP(e, "alpha", "/oauth/introspect-elsewhere", func(w http.ResponseWriter, answer *httptest.ResponseRecorder) {
				mu.Lock()
				followed = true
				mu.Unlock()
				w.WriteHeader(answer.Code)
			})
			e.login("alpha", "alice", "/")
			tok := e.storedTokens(e.client).AccessToken
			if tok == "" {
				t.Fatal("no access token")
			}
			if resp := e.request(nil, http.MethodGet, "/data", bearerHeader(tok)); resp.StatusCode == http.StatusOK {
				t.Errorf("accepted as %q", echoedHeaders(t, resp).Get(HeaderUser))
			}
			mu.Lock()
			defer mu.Unlock()
			if followed {
				t.Error("the introspection redirect was followed: the token was sent again")
			}
		})
	}
}
