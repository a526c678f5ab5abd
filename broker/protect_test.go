package broker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// whoami answers with what an embedding program's handler sees: the
// identity from the context, and any identity header that reached it.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := IdentityFrom(r.Context())
	who := "anonymous"
	if ok {
		who = id.User() + " groups=" + strings.Join(id.Groups, ",")
	}
	fmt.Fprintf(w, "%s path=%s header=%q", who, r.URL.Path, r.Header.Get("X-Auth-Request-User"))
})

// embeddedMux is an embedding program: its own mux, the broker at
// /oauth2/, handlers behind Require and Protect.
func embeddedMux(srv *Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/oauth2/", srv.Handler())
	mux.Handle("/admin/", srv.Require(AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}})(whoami))
	mux.Handle("/hello", srv.Require(AccessRule{Public: true})(whoami))
	mux.Handle("/", srv.Protect(whoami))
	return mux
}

func embeddedRules(c *Config) {
	c.Routes = []Route{{Path: "/open/", AccessRule: AccessRule{Public: true}}}
	c.Default = AccessRule{Groups: GroupCondition{OneOf: []string{"engineering"}}}
}

func TestRequireSendsAnonymousToSignIn(t *testing.T) {
	e := newEnv(t, withConfig(embeddedRules), withMount(embeddedMux))
	resp := e.get(e.broker.URL + "/admin/reports?x=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("browser: status %d, want 302", resp.StatusCode)
	}
	if want := "/oauth2/sign_in?rd=" + url.QueryEscape("/admin/reports?x=1"); resp.Header.Get("Location") != want {
		t.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
	}
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/admin/reports", nil)
	req.Header.Set("Accept", "application/json")
	api, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	api.Body.Close()
	if api.StatusCode != http.StatusUnauthorized {
		t.Errorf("API client: status %d, want 401", api.StatusCode)
	}
	// Protect applies the configured rules: /open/ is public.
	if got := body(e.get(e.broker.URL + "/open/x")); !strings.HasPrefix(got, "anonymous path=/open/x") {
		t.Errorf("public route through Protect: %q", got)
	}
	if resp := e.get(e.broker.URL + "/private"); resp.StatusCode != http.StatusFound {
		t.Errorf("default rule through Protect: status %d, want 302", resp.StatusCode)
	}
}

func TestRequireLetsTheRightUsersThrough(t *testing.T) {
	e := newEnv(t, withConfig(embeddedRules), withMount(embeddedMux))
	if resp := e.login("alpha", "alice", "/admin/"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	forged := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, e.broker.URL+path, nil)
		req.Header.Set("X-Auth-Request-User", "alpha:mallory")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		return body(resp)
	}
	want := `alpha:alpha-alice groups=admins,engineering path=/admin/ header=""`
	if got := forged("/admin/"); got != want {
		t.Errorf("admin page: %q, want %q (identity from the context, forged header stripped)", got, want)
	}
	// A public rule still tells a signed-in user's handler who it is.
	if got := forged("/hello"); !strings.HasPrefix(got, "alpha:alpha-alice ") {
		t.Errorf("public page for a signed-in user: %q", got)
	}

	bob := newEnvBrowser(e, "alpha", "bob")
	if resp := e.do(bob, http.MethodGet, e.broker.URL+"/admin/", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob (not in admins) on /admin/: status %d, want 403", resp.StatusCode)
	}
	if got := body(e.do(bob, http.MethodGet, e.broker.URL+"/private", nil)); !strings.HasPrefix(got, "alpha:alpha-bob ") {
		t.Errorf("bob (engineering) through Protect's default rule: %q", got)
	}
	if !strings.Contains(e.logs.String(), `msg="access denied" user=alpha:alpha-bob`) {
		t.Errorf("the refusal is not logged:\n%s", e.logs)
	}
}

// newEnvBrowser is a second browser of e, signed in as user.
func newEnvBrowser(e *env, provider, user string) *http.Client {
	e.t.Helper()
	c := newBrowser()
	cb := e.startLogin(c, provider, user, "/")
	if resp := e.do(c, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusFound {
		e.t.Fatalf("login as %s: status %d", user, resp.StatusCode)
	}
	return c
}

func TestRequirePanicsOnAnInvalidRule(t *testing.T) {
	srv, err := New(Config{Providers: []providers.Config{{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule AccessRule
		want string
	}{
		{AccessRule{Public: true, Groups: GroupCondition{OneOf: []string{"a"}}}, "public: cannot be combined"},
		{AccessRule{Providers: []string{"nope"}}, `providers[0]: "nope"`},
		{AccessRule{Users: []string{"no-provider"}}, "users[0]"},
	} {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.Contains(msg, tc.want) {
					t.Errorf("Require(%+v) panicked with %q, want it to name %q", tc.rule, msg, tc.want)
				}
			}()
			srv.Require(tc.rule)
		}()
	}
}

// With public_url under a path, an embedding program's handlers see the
// prefix in their paths, and the configured routes still match the path
// after it, as for the broker's upstreams; the broker's own routes mounted
// beside them work as well.
func TestProtectUnderPublicURLPrefix(t *testing.T) {
	srv, err := New(Config{PublicURL: "https://example.com/auth",
		Providers: []providers.Config{{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s"}},
		Routes:    []Route{{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}}},
		Default:   AccessRule{Public: true}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/oauth2/", srv.Handler())
	mux.Handle("/auth/", srv.Protect(whoami))
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://example.com"+path, nil))
		return rec
	}
	if rec := get("/auth/admin/x"); rec.Code != http.StatusFound ||
		rec.Header().Get("Location") != "/auth/oauth2/sign_in?rd="+url.QueryEscape("/auth/admin/x") {
		t.Errorf("the admins-only route under the prefix: %d %q, want a sign-in redirect back to /auth/admin/x", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get("/auth/reports"); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "anonymous path=/auth/reports") {
		t.Errorf("a public page under the prefix: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get("/auth/oauth2/sign_in"); rec.Code != http.StatusOK {
		t.Errorf("the sign-in page under the prefix: %d", rec.Code)
	}
}

func TestWithoutPrefix(t *testing.T) {
	for path, want := range map[string]string{"/auth": "/", "/auth/": "/", "/auth/admin/x": "/admin/x", "/authx/y": "/authx/y", "/other": "/other"} {
		if got := withoutPrefix(path, "/auth"); got != want {
			t.Errorf("withoutPrefix(%q) = %q, want %q", path, got, want)
		}
	}
}
