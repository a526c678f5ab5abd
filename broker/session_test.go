package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/broker/urls"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/demologin"
)

func TestSessionCookieAttributes(t *testing.T) {
	cases := []struct {
		name   string
		cfg    SessionConfig
		origin origin
		want   http.Cookie
	}{
		{"https at the root", SessionConfig{}, origin{urls.Origin{Scheme: "https", Host: "a.example"}},
			http.Cookie{Name: "__Host-oidc_broker", Path: "/", Secure: true}},
		{"https under a prefix", SessionConfig{}, origin{urls.Origin{Scheme: "https", Host: "a.example", Prefix: "/auth"}},
			http.Cookie{Name: "__Secure-oidc_broker", Path: "/auth/", Secure: true}},
		{"https with a cookie domain", SessionConfig{CookieDomain: "example.com"}, origin{urls.Origin{Scheme: "https", Host: "a.example.com"}},
			http.Cookie{Name: "__Secure-oidc_broker", Path: "/", Secure: true, Domain: "example.com"}},
		{"plain http", SessionConfig{CookieName: "sess"}, origin{urls.Origin{Scheme: "http", Host: "127.0.0.1:4180"}},
			http.Cookie{Name: "sess", Path: "/"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := newSessions(c.cfg, store.NewMemorySessions(), nil).Cookie(c.origin.Secure(), c.origin.Prefix)
			if got.Name != c.want.Name || got.Path != c.want.Path || got.Secure != c.want.Secure || got.Domain != c.want.Domain {
				t.Errorf("cookie = %+v, want %+v", got, c.want)
			}
			if !got.HttpOnly || got.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie not HttpOnly+Lax: %+v", got)
			}
		})
	}
}

// loginVia signs e's browser in as user from startURL (a /oauth2/start URL
// with any parameters) and returns the callback's response.
func loginVia(e *env, startURL, user string) *http.Response {
	e.t.Helper()
	resp := e.get(startURL)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d %s", resp.StatusCode, body(resp))
	}
	at, _ := url.Parse(resp.Header.Get("Location"))
	cb := demologin.Walk(e.t, at, user, func(method, u string, form url.Values) *http.Response { return e.do(e.client, method, u, form) },
		func(u *url.URL) bool { return strings.HasPrefix(u.String(), e.broker.URL+"/oauth2/callback/") })
	return e.get(cb.String())
}

// sessionCookie is the broker's Set-Cookie of resp.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == DefaultCookieName {
			return c
		}
	}
	t.Fatalf("no session cookie set: %q", resp.Header.Values("Set-Cookie"))
	return nil
}

func TestRememberMe(t *testing.T) {
	const max = 30 * 24 * time.Hour
	e := newEnv(t, withConfig(func(c *Config) { c.Session.PersistentMax = max }))

	// Not asked for: a browser-session cookie, and the session's lifetime.
	c := sessionCookie(t, loginVia(e, e.broker.URL+"/oauth2/start/alpha?rd=/", "alice"))
	if c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("default cookie persists: Max-Age %d, Expires %v", c.MaxAge, c.Expires)
	}

	// Asked for: a persistent cookie, and a session that lasts as long.
	e.client = newBrowser()
	c = sessionCookie(t, loginVia(e, e.broker.URL+"/oauth2/start/alpha?rd=/&remember=1", "alice"))
	if got := time.Duration(c.MaxAge) * time.Second; got > max || got < max-time.Minute {
		t.Errorf("remembered cookie: Max-Age %v, want %v", got, max)
	}
	if c.Expires.IsZero() {
		t.Error("remembered cookie without Expires")
	}
	ctx, err := e.server.sessions.LoadStored(c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(e.server.sessions.Deadline(ctx)); left < max-time.Minute {
		t.Errorf("remembered session ends in %v, want %v", left, max)
	}
	if !e.signedIn(e.client) {
		t.Error("not signed in")
	}

	// Off (persistent_max 0): remember=1 changes nothing.
	off := newEnv(t)
	c = sessionCookie(t, loginVia(off, off.broker.URL+"/oauth2/start/alpha?rd=/&remember=1", "alice"))
	if c.MaxAge != 0 || !c.Expires.IsZero() {
		t.Errorf("remember=1 with the feature off persists the cookie: Max-Age %d", c.MaxAge)
	}
}

func TestSignInOffersRememberMe(t *testing.T) {
	cfg := realmConfig()
	_, h := signInServer(t, cfg)
	if page := fetch(h, "/oauth2/sign_in?rd=/app&remember=1").Body.String(); strings.Contains(page, `id="remember"`) || strings.Contains(page, "remember=1") {
		t.Error("the page offers remember-me while persistent_max is 0")
	}
	cfg.Session.PersistentMax = 7 * 24 * time.Hour
	_, h = signInServer(t, cfg)
	page := fetch(h, "/oauth2/sign_in?rd=/app").Body.String()
	for _, want := range []string{`<form class="remember" id="remember-form" method="get" action="/oauth2/sign_in">`,
		`<input type="checkbox" id="remember" name="remember" value="1"> Keep me signed in</label>`, `href="/oauth2/start/corp?rd=%2Fapp"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	page = fetch(h, "/oauth2/sign_in?rd=/app&remember=1").Body.String()
	for _, want := range []string{`value="1" checked> Keep me signed in`, `href="/oauth2/start/corp?rd=%2Fapp&amp;remember=1"`,
		`<input type="hidden" name="remember" value="1">`} {
		if !strings.Contains(page, want) {
			t.Errorf("ticked page lacks %q", want)
		}
	}
	// The email field's way to a provider carries it too.
	w := fetch(h, "/oauth2/sign_in?rd=/app&remember=1&login=alice%40corp.example")
	if loc := w.Header().Get("Location"); loc != "/oauth2/start/corp?rd=%2Fapp&remember=1&login_hint=alice%40corp.example" {
		t.Errorf("home-realm redirect %q", loc)
	}
}
