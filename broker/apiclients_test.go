package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// headerEcho is an upstream that answers with the request headers it got,
// as JSON.
func headerEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echoedHeaders reads headerEcho's answer.
func echoedHeaders(t *testing.T, resp *http.Response) http.Header {
	t.Helper()
	var h http.Header
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body(resp))
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// apiEnv is a broker whose alpha and beta accept API tokens for
// api://alpha (scope read required) and api://beta, in front of a header
// echo.
func apiEnv(t *testing.T, opts ...envOption) (*env, *httptest.Server) {
	echo := headerEcho(t)
	opts = append([]envOption{
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://alpha"}, Scopes: []string{"read"}}),
		withAPITokens("beta", providers.APITokensConfig{Audiences: []string{"api://beta"}}),
		withRules("127.0.0.1"),
		withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL}} }),
	}, opts...)
	return newEnv(t, opts...), echo
}

// accessClaims are the claims of a client-credentials access token of the
// IdP id, for api://<id>.
func (e *env) accessClaims(id string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": e.idps[id].srv.URL, "sub": "svc-1", "aud": "api://" + id, "client_id": "reporting",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "scope": "read write", "groups": []string{"reporters"}}
}

func with(m map[string]any, kv ...any) map[string]any {
	c := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func bearerHeader(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// TestBearerTokenAccepted: an access token of a provider with api_tokens
// signs the request in as <provider>:<sub> through the reverse proxy and
// forward-auth, without a session; the app gets the identity headers, not
// the token; the access rules decide.
func TestBearerTokenAccepted(t *testing.T) {
	e, _ := apiEnv(t, withConfig(func(c *Config) {
		c.Routes = []Route{{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}}}
	}))
	tok := e.idps["alpha"].tamper.Mint(e.accessClaims("alpha"), "", "at+jwt")
	resp := e.request(nil, http.MethodGet, "/reports", bearerHeader(tok))
	if len(resp.Cookies()) != 0 {
		t.Errorf("a session was created: %v", resp.Cookies())
	}
	h := echoedHeaders(t, resp)
	if h.Get(HeaderUser) != "alpha:svc-1" || h.Get(HeaderGroups) != "reporters" {
		t.Errorf("app got user %q groups %q", h.Get(HeaderUser), h.Get(HeaderGroups))
	}
	if h.Get("Authorization") != "" {
		t.Errorf("the token reached the app: %q", h.Get("Authorization"))
	}

	fa := e.request(nil, http.MethodGet, "/oauth2/auth", with2(traefik(e, "/reports", "GET"), "Authorization", "Bearer "+tok))
	if fa.StatusCode != http.StatusAccepted || fa.Header.Get(HeaderUser) != "alpha:svc-1" || len(fa.Cookies()) != 0 {
		t.Errorf("forward-auth: %d user %q cookies %v", fa.StatusCode, fa.Header.Get(HeaderUser), fa.Cookies())
	}
	if resp := e.request(nil, http.MethodGet, "/admin/x", bearerHeader(tok)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a route the rules refuse: %d", resp.StatusCode)
	}

	// The JWT typ of most IdPs, and none, are accepted too; so is beta's
	// token, as beta's.
	for _, typ := range []string{"JWT", "application/at+jwt"} {
		if h := echoedHeaders(t, e.request(nil, http.MethodGet, "/", bearerHeader(e.idps["alpha"].tamper.Mint(e.accessClaims("alpha"), "", typ)))); h.Get(HeaderUser) != "alpha:svc-1" {
			t.Errorf("typ %s: user %q", typ, h.Get(HeaderUser))
		}
	}
	b := e.idps["beta"].tamper.Mint(e.accessClaims("beta"), "", "at+jwt")
	if h := echoedHeaders(t, e.request(nil, http.MethodGet, "/", bearerHeader(b))); h.Get(HeaderUser) != "beta:svc-1" {
		t.Errorf("beta's token: user %q", h.Get(HeaderUser))
	}
}

func with2(h map[string]string, k, v string) map[string]string {
	c := maps.Clone(h)
	c[k] = v
	return c
}

// TestBearerTokenRefusals: each hostile token gets 401 with the RFC 6750
// invalid_token challenge (403 insufficient_scope for a missing scope),
// through the proxy and forward-auth, no session, the reason in the log,
// and nothing in the verifier's cache.
func TestBearerTokenRefusals(t *testing.T) {
	e, _ := apiEnv(t)
	alpha, beta := e.idps["alpha"].tamper, e.idps["beta"].tamper
	good := e.accessClaims("alpha")
	idToken := e.loginIDToken("alpha")
	cases := []struct {
		name, token, reason string
		status              int
	}{
		{"alg none", alpha.Mint(good, "none", ""), "asymmetric", 401},
		{"HS256 with the client secret", alpha.Mint(good, "HS256:"+clientSecret("alpha"), ""), "asymmetric", 401},
		{"wrong aud", alpha.Mint(with(good, "aud", "api://other"), "", "at+jwt"), "aud", 401},
		{"expired", alpha.Mint(with(good, "exp", time.Now().Add(-10*time.Minute).Unix()), "", "at+jwt"), "exp", 401},
		{"no exp", alpha.Mint(with(good, "exp", nil), "", "at+jwt"), "no exp", 401},
		{"not valid yet", alpha.Mint(with(good, "nbf", time.Now().Add(10*time.Minute).Unix()), "", "at+jwt"), "nbf", 401},
		{"another provider's key, alpha's iss", beta.Mint(good, "", "at+jwt"), "signature", 401},
		{"another provider's token, alpha's audience", beta.Mint(with(e.accessClaims("beta"), "aud", "api://alpha"), "", "at+jwt"), "aud", 401},
		{"an ID token instead of an access token", idToken, "aud", 401},
		{"an ID token's claims for the API", alpha.Mint(with(good, "nonce", "n-1", "at_hash", "x"), "", "JWT"), "ID token", 401},
		{"typ of a logout token", alpha.Mint(good, "", "logout+jwt"), "typ", 401},
		{"unknown issuer", alpha.Mint(with(good, "iss", "https://idp.example"), "", "at+jwt"), "iss", 401},
		{"signature broken", alpha.Mint(good, "broken", "JWT"), "signature", 401},
		{"opaque token, no introspection", "2YotnFZFEjr1zCsicMWpAA", "introspect", 401},
		{"scope missing", alpha.Mint(with(good, "scope", "write"), "", "at+jwt"), "scopes [read]", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, fa := range []bool{false, true} {
				path, hdr := "/reports", bearerHeader(tc.token)
				if fa {
					path, hdr = "/oauth2/auth", with2(traefik(e, "/reports", "GET"), "Authorization", "Bearer "+tc.token)
				}
				resp := e.request(nil, http.MethodGet, path, hdr)
				code := "invalid_token"
				if tc.status == 403 {
					code = "insufficient_scope"
				}
				if resp.StatusCode != tc.status || resp.Header.Get("WWW-Authenticate") != `Bearer realm="oidc-broker", error="`+code+`"` {
					t.Errorf("forward-auth %v: %d %q", fa, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				if len(resp.Cookies()) != 0 || strings.Contains(body(resp), "svc-1") {
					t.Errorf("forward-auth %v: cookies %v", fa, resp.Cookies())
				}
			}
			if logs := e.logs.settled(tc.reason); !strings.Contains(logs, "bearer token refused") || !strings.Contains(logs, tc.reason) {
				t.Errorf("log lacks the refusal (%q)", tc.reason)
			}
			if strings.Contains(e.logs.String(), tc.token) {
				t.Error("the token is in the log")
			}
		})
	}
	if n := e.server.bearer.Len(); n != 0 {
		t.Errorf("refused tokens cached: %d", n)
	}
}

// loginIDToken signs in at the IdP id and returns the session's ID token.
func (e *env) loginIDToken(id string) string {
	e.t.Helper()
	e.login(id, "alice", "/")
	tok := e.sessionToken(e.client)
	_, tokens, found, err := e.server.sessions.Stored(tok)
	if err != nil || !found || tokens.IDToken == "" {
		e.t.Fatalf("no ID token in the session: %v", err)
	}
	e.client = newBrowser()
	return tokens.IDToken
}

// TestBearerCacheBounded: random tokens, JWT-shaped or not, never enter
// the cache (invariant: anonymous requests cannot grow server state); an
// accepted token does, once.
func TestBearerCacheBounded(t *testing.T) {
	e, _ := apiEnv(t)
	for i := range 200 {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		tok := base64.RawURLEncoding.EncodeToString(b)
		if i%2 == 0 {
			tok = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRhbXBlciJ9." + tok + "." + tok
		}
		if resp := e.request(nil, http.MethodGet, "/", bearerHeader(tok)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("random token: %d", resp.StatusCode)
		}
	}
	if n := e.server.bearer.Len(); n != 0 {
		t.Fatalf("random tokens cached: %d", n)
	}
	tok := e.idps["alpha"].tamper.Mint(e.accessClaims("alpha"), "", "at+jwt")
	for range 3 {
		echoedHeaders(t, e.request(nil, http.MethodGet, "/", bearerHeader(tok)))
	}
	if n := e.server.bearer.Len(); n != 1 {
		t.Errorf("cache holds %d tokens, want 1", n)
	}
}

// TestChallengeNamesBearerOnlyWhenAccepted: the 401 for want of
// credentials offers Bearer next to the session only when a provider
// accepts API tokens.
func TestChallengeNamesBearerOnlyWhenAccepted(t *testing.T) {
	e, _ := apiEnv(t)
	challenges, _ := apiRefusal(t, e.request(nil, http.MethodGet, "/x", map[string]string{"Accept": "application/json"}))
	if len(challenges) != 2 || challenges[0] != sessionChallenge || challenges[1] != bearerChallenge {
		t.Errorf("with api_tokens: %q", challenges)
	}
	challenges, _ = apiRefusal(t, e.request(nil, http.MethodGet, "/oauth2/auth", traefik(e, "/x", "GET")))
	if len(challenges) != 2 || challenges[1] != bearerChallenge {
		t.Errorf("forward-auth with api_tokens: %q", challenges)
	}
	plain := newEnv(t)
	challenges, _ = apiRefusal(t, plain.request(nil, http.MethodGet, "/x", map[string]string{"Accept": "application/json"}))
	if len(challenges) != 1 || challenges[0] != sessionChallenge {
		t.Errorf("without: %q", challenges)
	}
	// Without api_tokens a Bearer header is the app's business.
	echo := headerEcho(t)
	off := newEnv(t, withRules("127.0.0.1"), withConfig(func(c *Config) {
		c.Routes = []Route{{Path: "/", AccessRule: AccessRule{Public: true}}}
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL}}
	}))
	if h := echoedHeaders(t, off.request(nil, http.MethodGet, "/", bearerHeader("abc"))); h.Get("Authorization") != "Bearer abc" {
		t.Errorf("without api_tokens: Authorization %q", h.Get("Authorization"))
	}
}

// TestBearerOpaqueTokenIntrospected: an opaque access token is accepted
// through RFC 7662 introspection at the provider that issued it (the demo
// IdP's own endpoint, asked with the broker's client credentials), cached
// briefly (accepted by its client_id, api_tokens.clients: the demo IdP's
// answer names the broker's client id as aud); a provider that does not
// introspect never accepts it.
func TestBearerOpaqueTokenIntrospected(t *testing.T) {
	echo := headerEcho(t)
	e := newEnv(t,
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://alpha"}, Introspection: true, Clients: []string{"broker-alpha"}}),
		withAPITokens("beta", providers.APITokensConfig{Audiences: []string{"api://beta"}}),
		withConfig(func(c *Config) {
			c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL, Tokens: TokenRelay{PassAccessToken: "X-Access-Token"}}}
		}))
	e.login("alpha", "alice", "/")
	tok := e.storedTokens(e.client).AccessToken
	if tok == "" || strings.Count(tok, ".") == 2 {
		t.Fatalf("the demo IdP's access token %q is not opaque", tok)
	}
	h := echoedHeaders(t, e.request(nil, http.MethodGet, "/data", bearerHeader(tok)))
	if h.Get(HeaderUser) != "alpha:alpha-alice" || h.Get("X-Access-Token") != tok {
		t.Errorf("introspected token: user %q, relayed token %v", h.Get(HeaderUser), h.Get("X-Access-Token") == tok)
	}
	if n := e.server.bearer.Len(); n != 1 {
		t.Errorf("cache holds %d", n)
	}
	if resp := e.request(nil, http.MethodGet, "/data", bearerHeader("not-a-token-of-anyone")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown opaque token: %d", resp.StatusCode)
	}

	only := newEnv(t,
		withAPITokens("alpha", providers.APITokensConfig{Audiences: []string{"api://alpha"}}),
		withAPITokens("beta", providers.APITokensConfig{Audiences: []string{"api://beta"}, Introspection: true, Clients: []string{"broker-beta"}}),
		withConfig(func(c *Config) {
			c.Upstreams = []UpstreamConfig{{Path: "/", URL: echo.URL, Tokens: TokenRelay{PassAccessToken: "X-Access-Token"}}}
		}))
	only.login("alpha", "alice", "/")
	tok = only.storedTokens(only.client).AccessToken
	if resp := only.request(nil, http.MethodGet, "/data", bearerHeader(tok)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alpha's token where only beta introspects: %d", resp.StatusCode)
	}
}

// TestAPITokensSameIssuer: two providers of one issuer may not accept the
// same audience: one token would be both's.
func TestAPITokensSameIssuer(t *testing.T) {
	p := func(id string) providers.Config {
		return providers.Config{ID: id, Issuer: "https://idp.example", ClientID: id, ClientSecret: "s",
			APITokens: &providers.APITokensConfig{Audiences: []string{"api://x"}}}
	}
	cfg := Config{Providers: []providers.Config{p("a"), p("b")}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `providers[1].api_tokens.audiences[0]: "api://x" is already accepted by providers[0]`) {
		t.Errorf("%v", err)
	}
}
