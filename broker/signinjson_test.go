package broker

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// apiRefusal reads a 401 for want of a session: its challenges and the
// sign-in URL of its JSON.
func apiRefusal(t *testing.T, resp *http.Response) (challenges []string, signIn string) {
	t.Helper()
	defer resp.Body.Close()
	var v struct {
		Error     string `json:"error"`
		SignInURL string `json:"sign_in_url"`
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Error != "not signed in" {
		t.Fatalf("body: %+v, %v", v, err)
	}
	return resp.Header.Values("WWW-Authenticate"), v.SignInURL
}

// TestAPIClientGetsSignInURL: an API client that is not signed in gets
// 401 with JSON naming the sign-in page and rd (the request it made), on
// the broker's origin as trusted_proxies and public_url establish it,
// never a client's forwarding headers; the challenge is the cookie
// session's, never Bearer (the broker accepts no bearer token).
func TestAPIClientGetsSignInURL(t *testing.T) {
	e := newEnv(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		resp := e.request(nil, method, "/app/data?x=1&y=a%20b", map[string]string{"Accept": "application/json",
			"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example"})
		challenges, signIn := apiRefusal(t, resp)
		if want := e.broker.URL + "/oauth2/sign_in?rd=" + url.QueryEscape("/app/data?x=1&y=a%20b"); signIn != want {
			t.Errorf("%s: sign_in_url %q, want %q", method, signIn, want)
		}
		if len(challenges) != 1 || challenges[0] != `Cookie realm="oidc-broker"` {
			t.Errorf("%s: WWW-Authenticate %q", method, challenges)
		}
	}

	trusted := newEnv(t, withConfig(func(c *Config) {
		c.TrustedProxies = proxyfix.Config{XProto: 1, XHost: 1, XPrefix: 1}
	}))
	resp := trusted.request(nil, http.MethodPost, "/_dash-update-component", map[string]string{
		"X-Forwarded-Host": "evil.example, dash.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/sso"})
	if _, signIn := apiRefusal(t, resp); signIn != "https://dash.example.com/sso/oauth2/sign_in?rd=%2Fsso%2F_dash-update-component" {
		t.Errorf("behind a trusted proxy: sign_in_url %q", signIn)
	}

	pinned := newEnv(t, withConfig(func(c *Config) {
		c.PublicURL = "https://auth.example.com/base"
		c.TrustedProxies = proxyfix.Config{XHost: 1}
	}))
	resp = pinned.request(nil, http.MethodGet, "/base/app", map[string]string{"Accept": "application/json", "X-Forwarded-Host": "evil.example"})
	if _, signIn := apiRefusal(t, resp); signIn != "https://auth.example.com/base/oauth2/sign_in?rd=%2Fbase%2Fapp" {
		t.Errorf("with public_url: sign_in_url %q", signIn)
	}
}

// TestForwardAuthAPIClientGetsSignInURL: the forward-auth 401, which
// Traefik and Caddy hand to the client as it is, carries the same JSON and
// challenge as its Location.
func TestForwardAuthAPIClientGetsSignInURL(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1"))
	resp := e.request(nil, http.MethodGet, "/oauth2/auth", traefik(e, "/api/items", "POST"))
	loc := resp.Header.Get("Location")
	challenges, signIn := apiRefusal(t, resp)
	if !strings.HasPrefix(signIn, e.broker.URL+"/oauth2/sign_in") || signIn != loc {
		t.Errorf("sign_in_url %q, Location %q", signIn, loc)
	}
	if len(challenges) != 1 || strings.Contains(challenges[0], "Bearer") {
		t.Errorf("WWW-Authenticate %q", challenges)
	}
}

// TestAPIClientOnBasicPath: a Basic path's 401 for want of any
// credentials offers the session only: a Basic challenge would make a
// browser answer a page's fetch with a password dialog, not the page.
func TestAPIClientOnBasicPath(t *testing.T) {
	e := newEnv(t, withLocal(t, "/api/"))
	challenges, signIn := apiRefusal(t, e.request(nil, http.MethodPost, "/api/items", nil))
	if len(challenges) != 1 || challenges[0] != `Cookie realm="oidc-broker"` {
		t.Errorf("WWW-Authenticate %q", challenges)
	}
	if signIn != e.broker.URL+"/oauth2/sign_in?rd=%2Fapi%2Fitems" {
		t.Errorf("sign_in_url %q", signIn)
	}
}
