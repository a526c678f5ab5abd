package broker

import (
	"net/http"
	"strings"
	"testing"
)

// TestTokenRelay: an upstream that asks gets the user's access token as
// Authorization: Bearer and the ID token in its header, the broker's and
// never a client's; an upstream that did not ask gets neither, nor a
// client's header of those names; after expiry the token is the
// refreshed one.
func TestTokenRelay(t *testing.T) {
	api, other := headerEcho(t), headerEcho(t)
	e, offset := clockEnv(t, withScopes("offline_access"), withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{
			{Path: "/api/", URL: api.URL, Tokens: TokenRelay{PassAccessToken: "Authorization", PassIDToken: "X-Id-Token"}},
			{Path: "/", URL: other.URL},
		}
	}))
	e.login("alpha", "alice", "/")
	stored := e.storedTokens(e.client)
	if stored.AccessToken == "" {
		t.Fatal("the session keeps no access token although an upstream asks for it")
	}
	forged := map[string]string{"X-Id-Token": "forged", "x_id_token": "forged", "Authorization": "Bearer forged"}
	h := echoedHeaders(t, e.request(e.client, http.MethodGet, "/api/items", forged))
	if h.Get("Authorization") != "Bearer "+stored.AccessToken || h.Get("X-Id-Token") != stored.IDToken || len(h.Values("X-Id-Token")) != 1 {
		t.Errorf("asking upstream got Authorization %q, X-Id-Token %q", h.Get("Authorization"), h.Values("X-Id-Token"))
	}
	if _, ok := h["X_id_token"]; ok {
		t.Error("a client's x_id_token reached the app")
	}
	h = echoedHeaders(t, e.request(e.client, http.MethodGet, "/other", map[string]string{"X-Id-Token": "forged"}))
	if h.Get("X-Id-Token") != "" || strings.Contains(h.Get("Authorization"), stored.AccessToken) {
		t.Errorf("upstream that did not ask got X-Id-Token %q Authorization %q", h.Get("X-Id-Token"), h.Get("Authorization"))
	}
	if strings.Contains(e.logs.String(), stored.AccessToken) || strings.Contains(e.logs.String(), stored.IDToken) {
		t.Error("a token is in the log")
	}

	offset.Store(int64(pastAccessToken))
	h = echoedHeaders(t, e.request(e.client, http.MethodGet, "/api/items", nil))
	renewed := e.storedTokens(e.client)
	if renewed.AccessToken == stored.AccessToken || h.Get("Authorization") != "Bearer "+renewed.AccessToken {
		t.Errorf("after expiry the app got %q, the session keeps %q (was %q)", h.Get("Authorization"), renewed.AccessToken, stored.AccessToken)
	}
}

// TestTokenRelayForwardAuth: forward-auth's answer carries the tokens for
// the hosts of forward_auth.hosts only; an API client's bearer token is
// its access token; sessions keep no access token when no app asks.
func TestTokenRelayForwardAuth(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1"), withConfig(func(c *Config) {
		c.ForwardAuth = ForwardAuthConfig{TokenRelay: TokenRelay{PassAccessToken: "X-Forwarded-Access-Token", PassIDToken: "X-Forwarded-Id-Token"},
			Hosts: []string{"api.example.com"}}
	}))
	e.login("alpha", "alice", "/")
	stored := e.storedTokens(e.client)
	ask := func(host string) *http.Response {
		return e.request(e.client, http.MethodGet, "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/x", "X-Forwarded-Method": "GET",
			"X-Forwarded-Host": host, "X-Forwarded-Proto": "https"})
	}
	if resp := ask("api.example.com"); resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Forwarded-Access-Token") != stored.AccessToken ||
		resp.Header.Get("X-Forwarded-Id-Token") != stored.IDToken {
		t.Errorf("asking host: %d %q", resp.StatusCode, resp.Header.Get("X-Forwarded-Access-Token"))
	}
	if resp := ask("wiki.example.com"); resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Forwarded-Access-Token") != "" || resp.Header.Get("X-Forwarded-Id-Token") != "" {
		t.Errorf("another host: %d %q", resp.StatusCode, resp.Header.Get("X-Forwarded-Access-Token"))
	}

	plain := newEnv(t)
	plain.login("alpha", "alice", "/")
	if tok := plain.storedTokens(plain.client); tok.AccessToken != "" {
		t.Error("the session keeps the access token although no app asks for it")
	}
}

// TestTokenRelayConfig: bad header names fail the start, naming the field.
func TestTokenRelayConfig(t *testing.T) {
	for _, tc := range []struct {
		relay TokenRelay
		want  string
	}{
		{TokenRelay{PassAccessToken: "X Token"}, `upstreams[0].pass_access_token: "X Token" must be a header name`},
		{TokenRelay{PassAccessToken: "Cookie"}, `upstreams[0].pass_access_token: "Cookie" is a header`},
		{TokenRelay{PassIDToken: "X-Forwarded-For"}, `upstreams[0].pass_id_token: "X-Forwarded-For" is a header`},
		{TokenRelay{PassIDToken: "X-Auth-Request-User"}, `upstreams[0].pass_id_token: "X-Auth-Request-User" is one of the identity headers`},
		{TokenRelay{PassAccessToken: "X-T", PassIDToken: "x-t"}, `upstreams[0].pass_id_token: "x-t" is already the access token's header`},
	} {
		cfg := Config{Upstreams: []UpstreamConfig{{Path: "/", URL: "http://127.0.0.1:1", Tokens: tc.relay}}}
		if err := cfg.validate(false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.relay, err, tc.want)
		}
	}
	cfg := Config{ForwardAuth: ForwardAuthConfig{Hosts: []string{"bad host"}}}
	if err := cfg.validate(false); err == nil || !strings.Contains(err.Error(), "forward_auth.hosts[0]") {
		t.Errorf("forward_auth.hosts: %v", err)
	}
}
