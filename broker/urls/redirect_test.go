package urls

import (
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker/redirect"
)

func TestSafeRedirect(t *testing.T) {
	cases := []struct {
		rd   string
		want string
	}{
		{"/", "/"},
		{"/app/page?x=1&y=%20z#frag", "/app/page?x=1&y=%20z#frag"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"", "/"},
		{"relative/path", "/"},
		{"//evil.com", "/"},
		{"//evil.com/path", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"/\\/evil.com", "/"},
		{"https://evil.com", "/"},
		{"https:evil.com", "/"},
		{"http:/evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.com", "/"},
		{"/%2f%2fevil.com", "/"},
		{"%2F%2Fevil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%255Cevil.com", "/"},
		{"/%252F%252Fevil.com", "/"},
		{"/x\r\nSet-Cookie: a=b", "/"},
		{"/x%0d%0aSet-Cookie:%20a=b", "/"},
		{"/x%250d%250a", "/"},
		{"/\tevil", "/"},
		{"/x\x00", "/"},
		{"/%", "/"},
		{" //evil.com", "/"},
		{"/" + string(make([]byte, redirect.MaxLength)), "/"},
		// Absolute URLs: refused without redirect_hosts, even to a
		// plausible host (see TestAbsoluteRedirect for the allowed ones).
		{"https://app.example.com/x", "/"},
		{"http://app.example.com/x", "/"},
	}
	if got := (Origin{Prefix: "/auth"}).SafeRedirect("//evil"); got != "/auth/" {
		t.Errorf("fallback under a prefix = %q", got)
	}
	for _, c := range cases {
		if got := (Origin{}).SafeRedirect(c.rd); got != c.want {
			t.Errorf("safeRedirect(%q) = %q, want %q", c.rd, got, c.want)
		}
	}
}

// TestAbsoluteRedirect: with redirect_hosts, an absolute rd on a listed
// host (or the broker's own) is followed; everything else still is not.
func TestAbsoluteRedirect(t *testing.T) {
	hosts := redirect.Compile([]string{"app.example.com", ".apps.example.org", "admin.example.com:8443", "legacy.example.net:443"})
	broker := Origin{Scheme: "https", Host: "auth.example.com", RedirectHosts: hosts}
	plain := Origin{Scheme: "http", Host: "127.0.0.1:4180", RedirectHosts: hosts}
	cases := []struct {
		o    Origin
		rd   string
		want bool
	}{
		{broker, "https://app.example.com/x?y=1#z", true},
		{broker, "https://app.example.com", true},
		{broker, "https://app.example.com?x", true},
		{broker, "https://app.example.com:443/x", true},  // the default port, spelt out
		{broker, "https://App.Example.COM/x", true},      // host names are case-insensitive
		{broker, "https://auth.example.com/x", true},     // the broker's own Origin
		{broker, "https://apps.example.org/x", true},     // .domain: the domain
		{broker, "https://a.b.apps.example.org/x", true}, // .domain: subdomains
		{broker, "https://admin.example.com:8443/x", true},
		{broker, "https://legacy.example.net/x", true}, // :443 listed is the default port
		{broker, "https://app.example.com/x%0d%0aSet-Cookie:a=b", true},
		{broker, "https://app.example.com//evil.example/x", true}, // a path on the listed host
		{broker, "https://app.example.com#@evil.example", true},   // '#' ends the host

		{broker, "http://app.example.com/x", false}, // https only from an https broker
		{broker, "https://evil.example/x", false},
		{broker, "https://app.example.com.evil.example/x", false},
		{broker, "https://evilapp.example.com/x", false},
		{broker, "https://xapps.example.org/x", false},
		{broker, "https://app.example.com./x", false}, // a trailing dot is another name to cookies
		{broker, "https://app.example.com:8443/x", false},
		{broker, "https://admin.example.com/x", false}, // listed with another port
		{broker, "https://app.example.com:0443/x", false},
		{broker, "https://app.example.com:/x", false},
		{broker, "https://app.example.com:99999/x", false},
		{broker, "https://good.example@evil.example/x", false},
		{broker, "https://app.example.com@evil.example/x", false},
		{broker, "https://app.example.com:443@evil.example/x", false},
		{broker, "https://evil.example\\@app.example.com/x", false},
		{broker, "https://evil.example%40app.example.com/x", false},
		{broker, "https://app%2eexample.com/x", false},
		{broker, "https://evil.example%2F.app.example.com/x", false},
		{broker, "https://app.example.com\\@evil.example", false},
		{broker, "https:\\\\app.example.com/x", false},
		{broker, "https:/app.example.com/x", false},
		{broker, "https:app.example.com/x", false},
		{broker, "HTTPS://app.example.com/x", false},
		{broker, " https://app.example.com/x", false},
		{broker, "https://app.example.com/x\r\nSet-Cookie: a=b", false},
		{broker, "https://app.example.com/\tx", false},
		{broker, "https://app.example.com/a b", false},
		{broker, "https://[::1]/x", false},
		{broker, "https://app.example.com/" + strings.Repeat("x", redirect.MaxLength), false},
		{broker, "javascript://app.example.com/%0aalert(1)", false},
		{broker, "ftp://app.example.com/x", false},
		{broker, "https://", false},
		{broker, "https:///x", false},

		{plain, "http://app.example.com/x", true}, // http only when the broker is http
		{plain, "http://127.0.0.1:4180/x", true},  // the broker's own Origin
		{plain, "http://127.0.0.1:4181/x", false},
		{plain, "https://app.example.com/x", true},
		{Origin{Scheme: "https", Host: "auth.example.com"}, "https://app.example.com/x", false}, // no redirect_hosts
		{Origin{Scheme: "https", Host: "auth.example.com"}, "https://auth.example.com/x", true},
		{Origin{Scheme: "https", Host: "auth.example.com"}, "http://auth.example.com/x", false},
	}
	for _, c := range cases {
		want := c.rd
		if !c.want {
			want = "/"
		}
		if got := c.o.SafeRedirect(c.rd); got != want {
			t.Errorf("%s: safeRedirect(%q) = %q, want %q", c.o.Scheme, c.rd, got, want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "https:evil", "/%2F%2Fevil", "/a?b=c#d", "/%0d%0a",
		"https://app.example.com/x", "https://good.example@evil.example", "https://evil.example\\@app.example.com",
		"https://a.apps.example.org:443/x?y#z", "http://app.example.com/"} {
		f.Add(s)
	}
	o := Origin{Scheme: "https", Host: "auth.example.com", RedirectHosts: redirect.Compile([]string{"app.example.com", ".apps.example.org"})}
	f.Fuzz(func(t *testing.T, rd string) {
		got := o.SafeRedirect(rd)
		if got == "/" {
			return
		}
		if got != rd {
			t.Fatalf("safeRedirect(%q) = %q", rd, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] == 0x7f || got[i] == '\\' {
				t.Fatalf("safeRedirect(%q) kept byte %#x", rd, got[i])
			}
		}
		if got[0] == '/' {
			if len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
				t.Fatalf("safeRedirect(%q) = %q", rd, got)
			}
			return
		}
		// Absolute: https, no userinfo, and a listed host, however the
		// text is read: by net/url, and by a browser, whose authority
		// ends at the first '/', '?', '#' or '\'.
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "https" || u.User != nil {
			t.Fatalf("safeRedirect(%q): %v %+v", rd, err, u)
		}
		authority := strings.TrimPrefix(got, "https://")
		if i := strings.IndexAny(authority, "/?#\\"); i >= 0 {
			authority = authority[:i]
		}
		if strings.ContainsAny(authority, "@%") || !strings.EqualFold(authority, u.Host) {
			t.Fatalf("safeRedirect(%q): authority %q, net/url host %q", rd, authority, u.Host)
		}
		h := strings.ToLower(u.Hostname())
		if h != "app.example.com" && h != "auth.example.com" && h != "apps.example.org" && !strings.HasSuffix(h, ".apps.example.org") {
			t.Fatalf("safeRedirect(%q) leaves for %q", rd, h)
		}
		if p := u.Port(); p != "" && p != "443" {
			t.Fatalf("safeRedirect(%q) with port %q", rd, p)
		}
	})
}
