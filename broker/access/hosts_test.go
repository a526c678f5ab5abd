package access

import (
	"errors"
	"testing"
)

func TestHostPattern(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		no      []string
	}{
		{"app.example.com", []string{"app.example.com", "APP.example.com", "app.example.com."},
			[]string{"example.com", "x.app.example.com", "app.example.com.evil", "", "."}},
		{".example.com", []string{"example.com", "a.example.com", "a.b.EXAMPLE.com", "a.example.com."},
			[]string{"badexample.com", "example.com.evil", "example.org", ""}},
		// A trailing dot in the pattern names the same host.
		{"app.example.com.", []string{"app.example.com", "app.example.com."}, []string{"example.com"}},
		{".Example.COM.", []string{"a.example.com", "example.com."}, []string{"example.org"}},
		{"my_app", []string{"my_app", "MY_APP"}, []string{"app"}},
		{"127.0.0.1", []string{"127.0.0.1"}, []string{"127.0.0.2"}},
	}
	for _, c := range cases {
		p, err := ParseHostPattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		for _, h := range c.match {
			if !p.Match(h) {
				t.Errorf("%q does not match %q", c.pattern, h)
			}
		}
		for _, h := range c.no {
			if p.Match(h) {
				t.Errorf("%q matches %q", c.pattern, h)
			}
		}
	}
	for _, bad := range []string{"", ".", "..", "a..b", "*.example.com", "a.com:443", "a/b", "a b", "[::1]", "é.example",
		"a.com..", "..a.com", "@a.com"} {
		if _, err := ParseHostPattern(bad); !errors.Is(err, ErrHostPattern) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
	if (HostPattern{}).Match("") || (HostPattern{}).Match("a") {
		t.Error("the zero pattern matches")
	}
}

func TestHostname(t *testing.T) {
	for in, want := range map[string]string{
		"App.Example.com":       "app.example.com",
		"app.example.com.":      "app.example.com",
		"app.example.com.:8443": "app.example.com",
		"127.0.0.1:80":          "127.0.0.1",
		"[::1]:443":             "::1",
		"":                      "",
	} {
		if got := Hostname(in); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRouteHostTrailingDot: a request that names its host with a trailing
// dot is decided as the host without it.
func TestRouteHostTrailingDot(t *testing.T) {
	p := Compile([]Route{{Path: "/", Host: "admin.example.com", AccessRule: Rule{Groups: GroupCondition{OneOf: []string{"admins"}}}}},
		Rule{Public: true})
	for _, host := range []string{"admin.example.com", "admin.example.com.", "ADMIN.example.com."} {
		if d, _ := p.Decide(Request{Method: "GET", Host: host, Path: "/"}, ruleBob); d != Forbidden {
			t.Errorf("%q: %v, want Forbidden", host, d)
		}
	}
}
