package broker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// withRules configures the rules the integration tests share: /public/
// for everyone, /admin/ for admins, DELETE on /api/ for admins, anything
// else for any signed-in user. from is trusted_proxies.from (the test
// client connects from 127.0.0.1).
func withRules(from ...string) envOption {
	return withConfig(func(c *Config) {
		admins := AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}
		c.Routes = []Route{
			{Path: "/public/", AccessRule: AccessRule{Public: true}},
			{Path: "/admin/", AccessRule: admins},
			{Path: "/api/", Methods: []string{"DELETE"}, AccessRule: admins},
		}
		c.TrustedProxies.From = from
	})
}

// request sends method path with headers through client c (nil: a fresh
// browser without session) and returns the response with its body read.
func (e *env) request(c *http.Client, method, path string, hdr map[string]string) *http.Response {
	e.t.Helper()
	if c == nil {
		c = newBrowser()
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.broker.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// nginx describes a request the way the documented nginx configuration does.
func nginx(uri, method string) map[string]string {
	return map[string]string{"X-Original-URI": uri, "X-Original-Method": method}
}

// traefik describes a request the way Traefik ForwardAuth and Caddy
// forward_auth do.
func traefik(e *env, uri, method string) map[string]string {
	return map[string]string{"X-Forwarded-Uri": uri, "X-Forwarded-Method": method,
		"X-Forwarded-Host": strings.TrimPrefix(e.broker.URL, "http://"), "X-Forwarded-Proto": "http"}
}

func TestForwardAuthTrustedProxy(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1"))
	host := strings.TrimPrefix(e.broker.URL, "http://")
	anonymous := []struct {
		name   string
		hdr    map[string]string
		status int
		rd     string // the sign-in Location's rd on 401
	}{
		{"nginx, public route", nginx("/public/x?y=1", "GET"), http.StatusAccepted, ""},
		{"nginx, protected route", nginx("/admin/x?y=1", "GET"), http.StatusUnauthorized, "/admin/x?y=1"},
		{"nginx, default rule", nginx("/other", "GET"), http.StatusUnauthorized, "/other"},
		{"traefik, public route", traefik(e, "/public/x", "GET"), http.StatusAccepted, ""},
		{"traefik, protected route", traefik(e, "/admin/x", "GET"), http.StatusUnauthorized, "http://" + host + "/admin/x"},
		{"caddy, public route", map[string]string{"X-Forwarded-Uri": "/public/x", "X-Forwarded-Method": "HEAD", "X-Forwarded-Host": host}, http.StatusAccepted, ""},
		{"encoded slash out of the public route", nginx("/public/..%2Fadmin/x", "GET"), http.StatusUnauthorized, "/public/..%2Fadmin/x"},
		{"dot-dot out of the public route", nginx("/public/../admin/x", "GET"), http.StatusUnauthorized, "/public/../admin/x"},
		{"dot-dot into the public route", nginx("/admin/../public/x", "GET"), http.StatusUnauthorized, "/admin/../public/x"},
		{"Tomcat path parameter", nginx("/public/..;/admin/x", "GET"), http.StatusUnauthorized, "/public/..;/admin/x"},
		// A proxy that sets one spelling and passes the client's other on:
		// the two disagree, and the request is unknown.
		{"two spellings disagree", map[string]string{"X-Original-URI": "/admin/x", "X-Forwarded-Uri": "/public/x"}, http.StatusUnauthorized, ""},
		{"not an origin-form URI", nginx("https://evil.example/public/x", "GET"), http.StatusUnauthorized, ""},
		{"no description", nil, http.StatusUnauthorized, ""},
	}
	for _, c := range anonymous {
		t.Run(c.name, func(t *testing.T) {
			resp := e.request(nil, http.MethodGet, "/oauth2/auth", c.hdr)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if resp.Header.Get(HeaderUser) != "" {
				t.Errorf("identity for nobody: %q", resp.Header.Get(HeaderUser))
			}
			if c.status != http.StatusUnauthorized {
				return
			}
			want := e.broker.URL + "/oauth2/sign_in"
			if c.rd != "" {
				want += "?rd=" + url.QueryEscape(c.rd)
			}
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		})
	}

	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	if resp := e.request(bob, http.MethodGet, "/oauth2/auth", nginx("/admin/x", "GET")); resp.StatusCode != http.StatusForbidden ||
		!strings.Contains(body(resp), "Access denied") || strings.Contains(body(resp), "admins") {
		t.Errorf("bob on /admin/: %d %s", resp.StatusCode, body(resp))
	}
	if !strings.Contains(e.logs.String(), `reason="route \"/admin/\": needs group one_of [admins]"`) {
		t.Errorf("the log does not say what was missing:\n%s", e.logs.String())
	}
	if resp := e.request(bob, http.MethodGet, "/oauth2/auth", nginx("/api/items/1", "DELETE")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob DELETE /api/: %d", resp.StatusCode)
	}
	if resp := e.request(bob, http.MethodGet, "/oauth2/auth", traefik(e, "/api/items/1", "GET")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("bob GET /api/: %d", resp.StatusCode)
	}
	for _, uri := range []string{"/public/x", "/other"} {
		resp := e.request(bob, http.MethodGet, "/oauth2/auth", nginx(uri, "GET"))
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderUser) != "alpha:alpha-bob" {
			t.Errorf("bob on %s: %d %q", uri, resp.StatusCode, resp.Header.Get(HeaderUser))
		}
	}

	alice := newBrowser()
	e.client = alice
	e.login("alpha", "alice", "/")
	resp := e.request(alice, http.MethodGet, "/oauth2/auth", traefik(e, "/admin/x", "POST"))
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderGroups) != "admins,engineering" {
		t.Errorf("alice on /admin/: %d %q", resp.StatusCode, resp.Header.Get(HeaderGroups))
	}
}

// TestForwardAuthUntrustedPeer: the request-describing headers of a peer
// outside trusted_proxies.from are ignored, so a forged URI cannot reach a
// public route; the unknown request is decided by every rule that may
// apply.
func TestForwardAuthUntrustedPeer(t *testing.T) {
	for name, from := range map[string][]string{"from lists another network": {"10.0.0.0/8"}, "from is empty": nil} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, withRules(from...))
			for _, hdr := range []map[string]string{nginx("/public/x", "GET"), traefik(e, "/public/x", "GET"), {"X-Forwarded-Uri": "/public/"}} {
				resp := e.request(nil, http.MethodGet, "/oauth2/auth", hdr)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("forged %v: status %d", hdr, resp.StatusCode)
				}
				if loc := resp.Header.Get("Location"); loc != e.broker.URL+"/oauth2/sign_in" {
					t.Errorf("forged %v: Location %q", hdr, loc)
				}
			}
			if !strings.Contains(e.logs.String(), "request-describing headers ignored") {
				t.Error("the ignored headers are not logged")
			}
			// Signed in: the admins route may apply, so bob is refused
			// everywhere and alice allowed.
			e.client = newBrowser()
			e.login("alpha", "bob", "/")
			if resp := e.request(e.client, http.MethodGet, "/oauth2/auth", nginx("/public/x", "GET")); resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob: %d", resp.StatusCode)
			}
			e.client = newBrowser()
			e.login("alpha", "alice", "/")
			if resp := e.request(e.client, http.MethodGet, "/oauth2/auth", nginx("/admin/x", "GET")); resp.StatusCode != http.StatusAccepted {
				t.Errorf("alice: %d", resp.StatusCode)
			}
		})
	}
}

// TestForwardAuthRedirect: ?redirect=1 sends a browser navigation to the
// sign-in page (Traefik and Caddy hand the answer to the client); API
// calls and other methods still get 401.
func TestForwardAuthRedirect(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1"))
	host := strings.TrimPrefix(e.broker.URL, "http://")
	want := e.broker.URL + "/oauth2/sign_in?rd=" + url.QueryEscape("http://"+host+"/admin/x?a=1&b=2")
	resp := e.request(nil, http.MethodGet, "/oauth2/auth?redirect=1", traefik(e, "/admin/x?a=1&b=2", "GET"))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("browser: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	api := traefik(e, "/admin/x", "GET")
	api["Accept"] = "application/json"
	if resp := e.request(nil, http.MethodGet, "/oauth2/auth?redirect=1", api); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API client: %d", resp.StatusCode)
	}
	if resp := e.request(nil, http.MethodGet, "/oauth2/auth?redirect=1", traefik(e, "/admin/x", "POST")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	if resp := e.request(nil, http.MethodGet, "/oauth2/auth?redirect=1", traefik(e, "/public/x", "GET")); resp.StatusCode != http.StatusAccepted {
		t.Errorf("public route: %d", resp.StatusCode)
	}
	// The redirect goes through sign-in and back.
	resp = e.login("alpha", "alice", "http://"+host+"/admin/x?a=1&b=2")
	if resp.Header.Get("Location") != "http://"+host+"/admin/x?a=1&b=2" {
		t.Errorf("after login: %q", resp.Header.Get("Location"))
	}
}

// TestForwardAuthRedirectHosts: the described request on another host
// becomes rd only when redirect_hosts lists it.
func TestForwardAuthRedirectHosts(t *testing.T) {
	describe := map[string]string{"X-Original-URI": "/admin/x?y=1", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https"}
	t.Run("listed", func(t *testing.T) {
		e := newEnv(t, withRules("127.0.0.1"), withConfig(func(c *Config) { c.RedirectHosts = []string{".example.com"} }))
		want := e.broker.URL + "/oauth2/sign_in?rd=" + url.QueryEscape("https://app.example.com/admin/x?y=1")
		if got := e.request(nil, http.MethodGet, "/oauth2/auth", describe).Header.Get("Location"); got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		resp := e.login("alpha", "alice", "https://app.example.com/admin/x?y=1")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://app.example.com/admin/x?y=1" {
			t.Errorf("after login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("not listed", func(t *testing.T) {
		e := newEnv(t, withRules("127.0.0.1"))
		if got := e.request(nil, http.MethodGet, "/oauth2/auth", describe).Header.Get("Location"); got != e.broker.URL+"/oauth2/sign_in" {
			t.Errorf("Location %q", got)
		}
		if resp := e.login("alpha", "alice", "https://app.example.com/x"); resp.Header.Get("Location") != "/" {
			t.Errorf("after login: %q", resp.Header.Get("Location"))
		}
	})
}

func TestDescribedTargetHeaders(t *testing.T) {
	cases := []struct {
		v    string
		host bool
	}{
		{"app.example.com", true}, {"App.Example.com:8443", true}, {"[::1]:8080", true}, {"[::1]", true},
		{"", false}, {"a, b", false}, {"evil.example/x", false}, {"a@b", false}, {".example.com", false},
		{"a.example.com:0", false}, {"[::1", false}, {"[zz]", false}, {"a:b:c", false},
	}
	for _, c := range cases {
		if got := proxyfix.ValidHost(c.v); got != c.host {
			t.Errorf("proxyfix.ValidHost(%q) = %v", c.v, got)
		}
	}
	h := http.Header{}
	h.Add("X-Original-Uri", "/a")
	h.Add("X-Forwarded-Uri", "/a")
	if v, ok := oneValue(h, "X-Original-Uri", "X-Forwarded-Uri"); !ok || v != "/a" {
		t.Errorf("equal values: %q %v", v, ok)
	}
	h.Add("X-Original-Uri", "/b")
	if _, ok := oneValue(h, "X-Original-Uri", "X-Forwarded-Uri"); ok {
		t.Error("different values accepted")
	}
	listed := func(from []string, remoteAddr string) bool {
		fix, err := proxyfix.New(proxyfix.Config{From: from}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remoteAddr
		return fix.PeerListed(r)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3:80": true, "[::ffff:10.1.2.3]:80": true, "192.0.2.1:1": true, "[2001:db8::1]:1": true,
		"127.0.0.1:1": false, "@": false, "": false,
	} {
		if got := listed([]string{"10.0.0.0/8", "::ffff:192.0.2.1", "2001:db8::/32"}, addr); got != want {
			t.Errorf("PeerListed(%q) = %v", addr, got)
		}
	}
	if listed(nil, "127.0.0.1:1") {
		t.Error("an empty list trusts a peer")
	}
}

// TestSignOutToRedirectHost: sign-out may return to a listed app, and to
// nowhere else.
func TestSignOutToRedirectHost(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.RedirectHosts = []string{"app.example.com"}
		c.Logout.LocalOnly = []string{"alpha"} // signout_test.go: rd after the IdP's sign-out
	}))
	for rd, want := range map[string]string{"https://app.example.com/bye": "https://app.example.com/bye", "https://evil.example/": "/oauth2/sign_out"} {
		e.client = newBrowser()
		e.login("alpha", "alice", "/")
		page := body(e.get(e.broker.URL + "/oauth2/sign_out?rd=" + url.QueryEscape(rd)))
		if strings.Contains(page, `name="rd" value="https://app.example.com/bye"`) != (rd == want) {
			t.Errorf("rd %q in the form: %s", rd, page)
		}
		i := strings.Index(page, `name="csrf" value="`)
		if i < 0 {
			t.Fatalf("no csrf field: %s", page)
		}
		csrf := page[i+len(`name="csrf" value="`):]
		csrf = csrf[:strings.IndexByte(csrf, '"')]
		resp := e.do(e.client, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {csrf}, "rd": {rd}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("sign-out to %q: %d %q", rd, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
