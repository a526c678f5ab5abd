package broker

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAccessRulesProxyMode: the rules in front of the upstream app.
func TestAccessRulesProxyMode(t *testing.T) {
	e := newEnv(t, withRules())
	api := map[string]string{"Accept": "application/json"}
	t.Run("anonymous", func(t *testing.T) {
		resp := e.request(nil, http.MethodGet, "/public/x?y=1", api)
		var v appView
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body(resp)), &v) != nil || v.Path != "/public/x" {
			t.Fatalf("public route: %d %s", resp.StatusCode, body(resp))
		}
		if _, ok := v.Headers[HeaderUser]; ok {
			t.Errorf("identity relayed for nobody: %v", v.Headers)
		}
		for _, path := range []string{"/admin/x", "/other", "/public/..%2Fadmin/x", "/public/%2e%2e/admin/x", "/public/..;/admin/x"} {
			if resp := e.request(nil, http.MethodGet, path, api); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d", path, resp.StatusCode)
			}
		}
		resp = e.request(nil, http.MethodGet, "/admin/x", nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/oauth2/sign_in?rd=%2Fadmin%2Fx" {
			t.Errorf("browser on /admin/: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// net/http cleans the path first: this is a redirect to /public/x,
		// never /admin/../public/x handed to the app.
		if resp := e.request(nil, http.MethodGet, "/admin/../public/x", api); resp.StatusCode != http.StatusTemporaryRedirect ||
			resp.Header.Get("Location") != "/public/x" {
			t.Errorf("/admin/../public/x: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("bob", func(t *testing.T) {
		bob := newBrowser()
		e.client = bob
		e.login("alpha", "bob", "/")
		resp := e.request(bob, http.MethodGet, "/admin/x", nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body(resp), "Access denied") {
			t.Fatalf("bob on /admin/: %d %s", resp.StatusCode, body(resp))
		}
		if strings.Contains(body(resp), "admins") {
			t.Error("the 403 page names what was missing")
		}
		if !strings.Contains(e.logs.String(), `user=alpha:alpha-bob reason="route \"/admin/\": needs group one_of [admins]"`) {
			t.Errorf("the log does not say what was missing:\n%s", e.logs.String())
		}
		if resp := e.request(bob, http.MethodPost, "/api/x", map[string]string{"X-HTTP-Method-Override": "DELETE"}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("DELETE by override: %d", resp.StatusCode)
		}
		for _, path := range []string{"/other", "/public/x", "/api/x"} {
			status, v := e.appView(bob, path, nil)
			if status != http.StatusOK || v.Headers[HeaderUser] != "alpha:alpha-bob" {
				t.Errorf("bob on %s: %d %v", path, status, v.Headers)
			}
		}
	})
	t.Run("alice", func(t *testing.T) {
		alice := newBrowser()
		e.client = alice
		e.login("alpha", "alice", "/")
		if status, v := e.appView(alice, "/admin/x", nil); status != http.StatusOK || v.Headers[HeaderGroups] != "admins,engineering" {
			t.Errorf("alice on /admin/: %d %v", status, v.Headers)
		}
	})
}

// TestDefaultRuleProxyMode: a default rule restricts everything no route
// matches.
func TestDefaultRuleProxyMode(t *testing.T) {
	e := newEnv(t, withRules(), withConfig(func(c *Config) {
		c.Default = AccessRule{Providers: []string{"beta"}, Groups: GroupCondition{NoneOf: []string{"contractors"}}}
	}))
	if status, _ := e.appView(newBrowser(), "/public/x", nil); status != http.StatusOK {
		t.Errorf("anonymous on a public route: %d", status)
	}
	e.login("alpha", "alice", "/")
	if resp := e.request(e.client, http.MethodGet, "/x", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("alice through alpha: %d", resp.StatusCode)
	}
	if !strings.Contains(e.logs.String(), `default rule: needs provider one of [beta]`) {
		t.Errorf("log:\n%s", e.logs.String())
	}
	e.client = newBrowser()
	e.login("beta", "alice", "/")
	if status, _ := e.appView(e.client, "/x", nil); status != http.StatusOK {
		t.Errorf("alice through beta: %d", status)
	}
}
