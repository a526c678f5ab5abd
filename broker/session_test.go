package broker

import (
	"net/http"
	"testing"
)

func TestSessionCookieAttributes(t *testing.T) {
	cases := []struct {
		name   string
		cfg    SessionConfig
		origin origin
		want   http.Cookie
	}{
		{"https at the root", SessionConfig{}, origin{Scheme: "https", Host: "a.example"},
			http.Cookie{Name: "__Host-oidc_broker", Path: "/", Secure: true}},
		{"https under a prefix", SessionConfig{}, origin{Scheme: "https", Host: "a.example", Prefix: "/auth"},
			http.Cookie{Name: "__Secure-oidc_broker", Path: "/auth/", Secure: true}},
		{"https with a cookie domain", SessionConfig{CookieDomain: "example.com"}, origin{Scheme: "https", Host: "a.example.com"},
			http.Cookie{Name: "__Secure-oidc_broker", Path: "/", Secure: true, Domain: "example.com"}},
		{"plain http", SessionConfig{CookieName: "sess"}, origin{Scheme: "http", Host: "127.0.0.1:4180"},
			http.Cookie{Name: "sess", Path: "/"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := newSessions(c.cfg).cookie(c.origin)
			if got.Name != c.want.Name || got.Path != c.want.Path || got.Secure != c.want.Secure || got.Domain != c.want.Domain {
				t.Errorf("cookie = %+v, want %+v", got, c.want)
			}
			if !got.HttpOnly || got.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie not HttpOnly+Lax: %+v", got)
			}
		})
	}
}
