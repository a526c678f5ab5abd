package session

import (
	"net/http"
	"strings"
	"testing"
)

// TestCookieValue: the session cookie is found as r.Cookie finds it, in the
// cases that matter: several lines, quotes, spaces, invalid values skipped,
// the first valid one wins, and many cookies.
func TestCookieValue(t *testing.T) {
	many := strings.Repeat("x=1; ", maxFastCookies) + "oidc_broker=late"
	for _, lines := range [][]string{
		nil,
		{""},
		{"oidc_broker=tok"},
		{"a=1; oidc_broker=tok; b=2"},
		{"a=1", "  oidc_broker = tok  "},
		{`oidc_broker="tok"`},
		{`oidc_broker="`},
		{"oidc_broker=bad\\value; oidc_broker=good"},
		{"oidc_broker_x=no; x_oidc_broker=no"},
		{"oidc_broker"},
		{"oidc_broker=; oidc_broker=second"},
		{";;oidc_broker=tok;;"},
		{many},
		{strings.Repeat("x=1;", 3001) + "oidc_broker=beyond-the-limit"},
	} {
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		got, ok := CookieValue(r, "oidc_broker")
		want, err := r.Cookie("oidc_broker")
		if ok != (err == nil) || ok && got != want.Value {
			t.Errorf("%q: %q %v, r.Cookie: %v %v", lines, got, ok, want, err)
		}
	}
}

// FuzzCookieValue: cookieValue agrees with r.Cookie on any Cookie header.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{"oidc_broker=tok", `a=1; oidc_broker="q"; b`, " ; oidc_broker = v ;", "oidc_broker=a\x7fb; oidc_broker=c"} {
		f.Add(s, "")
	}
	f.Add("a=1", "oidc_broker=x")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		r := &http.Request{Header: http.Header{"Cookie": {line1, line2}}}
		got, ok := CookieValue(r, "oidc_broker")
		want, err := r.Cookie("oidc_broker")
		if ok != (err == nil) || ok && got != want.Value {
			t.Errorf("%q: %q %v, r.Cookie: %v %v", r.Header["Cookie"], got, ok, want, err)
		}
	})
}
