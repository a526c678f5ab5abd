package proxyfix

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"strings"
	"testing"
)

// Multi-instance headers are fuzzed as one string with instances separated by "\n".

func FuzzPickFromRight(f *testing.F) {
	f.Add("192.168.0.1, 192.168.0.2", 2)
	f.Add("a\nb, c", 3)
	f.Add(", 192.168.0.3", 2)
	f.Add("", 1)
	f.Add("a,,\t, b ", 0)
	f.Fuzz(func(t *testing.T, s string, n int) {
		instances := strings.Split(s, "\n")
		got, ok := pickFromRight(instances, n)
		// The obvious implementation: join, split, index from the right.
		items := strings.Split(strings.Join(instances, ","), ",")
		if n <= 0 || n > len(items) {
			if ok {
				t.Fatalf("pickFromRight(%q, %d) = %q with only %d values", instances, n, got, len(items))
			}
			return
		}
		if want := strings.Trim(items[len(items)-n], " \t"); !ok || got != want {
			t.Fatalf("pickFromRight(%q, %d) = %q, %v, want %q", instances, n, got, ok, want)
		}
	})
}

func FuzzParseForwarded(f *testing.F) {
	f.Add(`for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com`)
	f.Add(`for="[2001:db8:cafe::17]:4711"`)
	f.Add(`x="a, for=6.6.6.6;proto=http", For=b` + "\n" + `for="a\"b\\c"`)
	f.Add(`for="unterminated` + "\n" + `for=b"`)
	f.Add(" ;, ;for=a;;")
	f.Add("for=a;FOR=b")
	f.Fuzz(func(t *testing.T, s string) {
		instances := strings.Split(s, "\n")
		elems, err := parseForwarded(instances)
		if err != nil {
			return
		}
		if len(elems) < len(instances) {
			t.Fatalf("%d elements from %d instances", len(elems), len(instances))
		}
		var out []string
		for _, e := range elems {
			seen := map[string]bool{}
			var pairs []string
			for _, p := range e {
				if p.name == "" || p.name != strings.ToLower(p.name) || strings.IndexFunc(p.name, func(r rune) bool { return r > 0x7f || !isTchar(byte(r)) }) >= 0 {
					t.Fatalf("bad name %q", p.name)
				}
				if seen[p.name] {
					t.Fatalf("repeated name %q", p.name)
				}
				seen[p.name] = true
				if strings.ContainsFunc(p.value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
					t.Fatalf("control character in value %q", p.value)
				}
				pairs = append(pairs, p.name+`="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.value)+`"`)
			}
			out = append(out, strings.Join(pairs, ";"))
		}
		// Writing the elements back, fully quoted, in one instance parses to the same.
		again, err := parseForwarded([]string{strings.Join(out, ", ")})
		if err != nil || !reflect.DeepEqual(again, elems) {
			t.Fatalf("round trip of %q: %q, %v; want %q", s, again, err, elems)
		}
	})
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{
		"sso.example.com", "SSO.example.com:8443", "[2001:db8::1]:443", "192.0.2.1:80", "my_service",
		"user@evil.example", "evil.example/x", "a\r\nb", "[fe80::1%eth0]", "0x7f.1", "example.com:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHost(s)
		if err != nil {
			return
		}
		for _, scheme := range []string{"http", "https"} {
			out := h.format(scheme)
			// Reusing the input is only a saving: the same text either way.
			if as := h.formatAs(scheme, s); as != out {
				t.Fatalf("parseHost(%q): formatAs gives %q, format %q", s, as, out)
			}
			if strings.ContainsFunc(out, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`/\@?#%`, r) }) {
				t.Fatalf("parseHost(%q) accepted %q", s, out)
			}
			if out != strings.ToLower(out) {
				t.Fatalf("parseHost(%q) = %q, not lower case", s, out)
			}
			// A URL parser reads the same host back.
			u, err := url.Parse(scheme + "://" + out + "/p")
			if err != nil || u.Host != out || u.Path != "/p" || u.User != nil {
				t.Fatalf("parseHost(%q) = %q, which url.Parse reads as %#v, %v", s, out, u, err)
			}
			// Normalizing is idempotent.
			again, err := parseHost(out)
			if err != nil || again.name != h.name || again.format(scheme) != out {
				t.Fatalf("parseHost(%q) = %q, which parses again as %+v, %v", s, out, again, err)
			}
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"/auth", "/auth/", "/", "//evil.example", "/a/../b", "/a%2f", `/a\b`, "/a/./b", "auth"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		if err != nil {
			return
		}
		if p == "" {
			return
		}
		if p[0] != '/' || strings.HasSuffix(p, "/") || path.Clean(p) != p || strings.Contains(p, "//") ||
			strings.ContainsAny(p, `%\?#:@`) || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
			t.Fatalf("parsePrefix(%q) accepted %q", s, p)
		}
		u, err := url.Parse("https://sso.example.com" + p + "/oauth2/callback")
		if err != nil || u.Host != "sso.example.com" || u.Path != p+"/oauth2/callback" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("parsePrefix(%q) = %q, which url.Parse reads as %#v, %v", s, p, u, err)
		}
		if again, err := parsePrefix(p); err != nil || again != p {
			t.Fatalf("parsePrefix(%q) = %q, which parses again as %q, %v", s, p, again, err)
		}
	})
}

func FuzzParseNode(f *testing.F) {
	for _, s := range []string{
		"192.0.2.43", "192.0.2.43:4711", "[2001:db8:cafe::17]:4711", "2001:db8::1", "unknown", "_hidden:_p",
		"::ffff:192.0.2.1", "fe80::1%eth0", "[::1]x", "", "192.0.2.43:99999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseNode(s)
		if err != nil {
			return
		}
		switch {
		case n.addr.IsValid():
			if n.name != "" || n.addr.Zone() != "" || n.addr.Is4In6() {
				t.Fatalf("parseNode(%q) = %+v", s, n)
			}
		case n.name != "unknown" && !isObfuscated(n.name):
			t.Fatalf("parseNode(%q) = %+v", s, n)
		}
		ra := n.remoteAddr()
		if _, _, err := net.SplitHostPort(ra); err != nil || strings.ContainsFunc(ra, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("parseNode(%q).remoteAddr() = %q, %v", s, ra, err)
		}
		if again, err := parseNode(ra); err != nil || again != n {
			t.Fatalf("parseNode(%q) = %+v, whose remoteAddr %q parses as %+v, %v", s, n, ra, again, err)
		}
	})
}

// FuzzHandler drives the middleware with arbitrary header values in both modes.
func FuzzHandler(f *testing.F) {
	f.Add("6.6.6.6, 203.0.113.7", "https", "sso.example.com", "8443", "/auth", "for=203.0.113.7;proto=https;host=sso.example.com", "backend:8080")
	f.Add("[2001:db8::1]:1", "HTTP", "[2001:db8::a]", "443", "/", `for="[2001:db8::1]:4711"`, "[::1]:8080")
	f.Add("_x", "x", "a/b", "0", "//x", `for="`, "bad host")
	f.Fuzz(func(t *testing.T, xfor, xproto, xhost, xport, xprefix, fwd, host string) {
		for _, cfg := range []Config{
			{XFor: 1, XProto: 1, XHost: 2, XPort: 1, XPrefix: 1},
			{Forwarded: 1, From: []string{"10.0.0.0/8"}},
		} {
			fix, err := New(cfg, discard)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
			r.Host, r.RemoteAddr = host, "10.0.0.2:5555"
			for name, v := range map[string]string{hdrFor: xfor, hdrProto: xproto, hdrHost: xhost, hdrPort: xport, hdrPrefix: xprefix, hdrForwarded: fwd} {
				for _, inst := range strings.Split(v, "\n") {
					r.Header.Add(name, inst)
				}
			}
			var facts Facts
			var seen *http.Request
			rec := httptest.NewRecorder()
			fix.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { facts, seen = FromRequest(r), r })).ServeHTTP(rec, r)
			if rec.Code != http.StatusOK || seen == nil {
				t.Fatalf("status %d", rec.Code)
			}
			if facts.Scheme != "http" && facts.Scheme != "https" {
				t.Fatalf("scheme %q", facts.Scheme)
			}
			if facts.Host != host {
				if _, err := parseHost(facts.Host); err != nil {
					t.Fatalf("host %q from %q: %v", facts.Host, host, err)
				}
			}
			if facts.Prefix != "" {
				if p, err := parsePrefix(facts.Prefix); err != nil || p != facts.Prefix {
					t.Fatalf("prefix %q", facts.Prefix)
				}
			}
			if _, _, err := net.SplitHostPort(seen.RemoteAddr); err != nil {
				t.Fatalf("RemoteAddr %q: %v", seen.RemoteAddr, err)
			}
			if !facts.Trusted && (seen.RemoteAddr != r.RemoteAddr || facts.Prefix != "") {
				t.Fatalf("untrusted request changed: %+v", facts)
			}
			if facts.Original != (Original{RemoteAddr: "10.0.0.2:5555", Host: host, Scheme: "http", Peer: netip.MustParseAddr("10.0.0.2")}) {
				t.Fatalf("original %+v", facts.Original)
			}
		}
	})
}
