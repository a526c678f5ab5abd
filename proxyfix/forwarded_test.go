package proxyfix

import (
	"reflect"
	"testing"
)

func TestParseForwarded(t *testing.T) {
	el := func(kv ...string) forwardedElement {
		var e forwardedElement
		for i := 0; i < len(kv); i += 2 {
			e = append(e, forwardedPair{kv[i], kv[i+1]})
		}
		return e
	}
	tests := []struct {
		name      string
		instances []string
		want      []forwardedElement // nil with wantErr
		wantErr   bool
	}{
		{"RFC 7239 example", []string{`for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com`},
			[]forwardedElement{el("for", "192.0.2.43"), el("for", "198.51.100.17", "by", "203.0.113.60", "proto", "http", "host", "example.com")}, false},
		{"quoted IPv6 with port", []string{`for="[2001:db8:cafe::17]:4711"`},
			[]forwardedElement{el("for", "[2001:db8:cafe::17]:4711")}, false},
		{"names are case-insensitive", []string{`For=a;PROTO=https;hOsT=x`},
			[]forwardedElement{el("for", "a", "proto", "https", "host", "x")}, false},
		{"comma and semicolon inside quotes", []string{`x="a, for=6.6.6.6;proto=http", for=b`},
			[]forwardedElement{el("x", "a, for=6.6.6.6;proto=http"), el("for", "b")}, false},
		{"backslash escapes", []string{`x="a\"b\\c\d"`}, []forwardedElement{el("x", `a"b\cd`)}, false},
		{"empty quoted string", []string{`x=""`}, []forwardedElement{el("x", "")}, false},
		{"spaces around separators", []string{" for=a ;\tproto=https , for=b "},
			[]forwardedElement{el("for", "a", "proto", "https"), el("for", "b")}, false},
		{"empty pairs and elements", []string{"for=a;;, ,for=b"},
			[]forwardedElement{el("for", "a"), nil, el("for", "b")}, false},
		{"instances are concatenated", []string{"for=a", "", "for=b, for=c"},
			[]forwardedElement{el("for", "a"), nil, el("for", "b"), el("for", "c")}, false},
		{"unterminated quote", []string{`for="a`}, nil, true},
		{"unterminated quote cannot swallow the next instance", []string{`for="a`, `for=b"`}, nil, true},
		{"text after closing quote", []string{`for="a"b`}, nil, true},
		{"unquoted IPv6 is not a token", []string{`for=2001:db8::1`}, nil, true},
		{"unquoted brackets", []string{`for=[2001:db8::1]`}, nil, true},
		{"space around equals", []string{`for = a`}, nil, true},
		{"missing value", []string{`for=`}, nil, true},
		{"missing name", []string{`=a`}, nil, true},
		{"no equals", []string{`for`}, nil, true},
		{"repeated parameter", []string{`for=a;proto=http;FOR=b`}, nil, true},
		{"control character in quotes", []string{"for=\"a\r\nb\""}, nil, true},
		{"escaped control character", []string{"for=\"a\\\x00\""}, nil, true},
		{"trailing backslash", []string{`for="a\`}, nil, true},
		{"space inside element", []string{`for=a proto=b`}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseForwarded(tt.instances)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseForwarded(%q) = %q, want error", tt.instances, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseForwarded(%q): %v", tt.instances, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseForwarded(%q)\n got  %q\n want %q", tt.instances, got, tt.want)
			}
		})
	}
}

// TestForwardedSpoofing is TestXForwardedSpoofing for RFC 7239 Forwarded.
func TestForwardedSpoofing(t *testing.T) {
	fwd := func(values ...string) in {
		i := in{}
		for _, v := range values {
			i.headers = append(i.headers, [2]string{hdrForwarded, v})
		}
		return i
	}
	proxy := "for=203.0.113.7;proto=https;host=sso.example.com"
	applied := trusted(func(v *view) {
		v.Scheme, v.Host, v.Client = "https", "sso.example.com", "203.0.113.7"
		v.RemoteAddr, v.ReqHost = "203.0.113.7:0", "sso.example.com"
	})
	one, two := Config{Forwarded: 1}, Config{Forwarded: 2}
	tests := []struct {
		name string
		cfg  Config
		in   in
		want view
	}{
		{"count 0 ignores it", Config{}, fwd(proxy), conn},
		{"one element", one, fwd(proxy), applied},
		{"forged element left of the proxy's", one, fwd("for=6.6.6.6;host=evil.example;proto=http, " + proxy), applied},
		{"forged instance before the proxy's", one, fwd("for=6.6.6.6;host=evil.example", proxy), applied},
		{"count 2 behind two proxies", two, fwd("for=6.6.6.6;host=evil.example, "+proxy, "for=10.0.0.1;proto=http;host=backend"), applied},
		{"count 2 with one element is ignored, never falls back", two, fwd("for=6.6.6.6;host=evil.example"), conn},
		{"forged element hidden in quotes is not an element", two,
			fwd(`x="a, for=6.6.6.6;host=evil.example", for=203.0.113.7`), conn},
		{"quoted semicolon does not start a pair", one, fwd(`for=203.0.113.7;host="sso.example.com;proto=http"`),
			trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:0" })},
		{"mixed case names and values", one, fwd("For=203.0.113.7;PROTO=HTTPS;Host=SSO.Example.COM"), applied},
		{"quoted values", one, fwd(`for="203.0.113.7";proto="https";host="sso.example.com"`), applied},
		{"quoted IPv6 with port", one, fwd(`for="[2001:db8::1]:4711";proto=https`),
			trusted(func(v *view) { v.Scheme, v.Client, v.RemoteAddr = "https", "2001:db8::1", "[2001:db8::1]:4711" })},
		{"unquoted IPv6 makes the header malformed", one, fwd(`for=2001:db8::1;proto=https`), conn},
		{"obfuscated for", one, fwd("for=_hidden;proto=https"),
			trusted(func(v *view) { v.Scheme, v.Client, v.RemoteAddr = "https", "_hidden", "_hidden:0" })},
		{"unknown for with obfuscated port", one, fwd(`for="unknown:_p1"`),
			trusted(func(v *view) { v.Client, v.RemoteAddr = "unknown", "unknown:0" })},
		{"host with port", one, fwd(`host="sso.example.com:8443";proto=https`),
			trusted(func(v *view) { v.Scheme, v.Host, v.ReqHost = "https", "sso.example.com:8443", "sso.example.com:8443" })},
		{"host with default port", one, fwd(`host="sso.example.com:443";proto=https`),
			trusted(func(v *view) { v.Scheme, v.Host, v.ReqHost = "https", "sso.example.com", "sso.example.com" })},
		{"invalid parameter is ignored alone", one, fwd(`for=203.0.113.7;proto=ftp;host="evil.example/x"`),
			trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:0" })},
		{"escaped quote in for", one, fwd(`for="\"6.6.6.6"`), conn},
		{"unterminated quote ignores the whole header", one, fwd(`for="6.6.6.6`, proxy), conn},
		{"repeated parameter ignores the whole header", one, fwd("for=6.6.6.6;for=203.0.113.7"), conn},
		{"malformed forged element ignores the whole header", one, fwd("garbage, " + proxy), conn},
		{"empty right-most element applies nothing", one, fwd(proxy + ", "), conn},
		{"only unknown parameters", one, fwd("by=10.0.0.1;secret=x"), conn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := serve(t, tt.cfg, newRequest(tt.in))
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
