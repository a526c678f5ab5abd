package proxyfix

import (
	"net/netip"
	"testing"
)

func TestPickFromRight(t *testing.T) {
	tests := []struct {
		instances []string
		n         int
		want      string
		ok        bool
	}{
		{nil, 1, "", false},
		{[]string{"a"}, 0, "", false},
		{[]string{"a"}, -1, "", false},
		{[]string{"a"}, 1, "a", true},
		{[]string{"a"}, 2, "", false},
		{[]string{"a, b ,\tc"}, 1, "c", true},
		{[]string{"a, b ,\tc"}, 2, "b", true},
		{[]string{"a, b ,\tc"}, 3, "a", true},
		{[]string{"a, b ,\tc"}, 4, "", false},
		{[]string{"a", "b, c"}, 3, "a", true},
		{[]string{"a", "", "c"}, 2, "", true}, // an empty instance is an empty value
		{[]string{"a,,c"}, 2, "", true},
		{[]string{""}, 1, "", true},
		{[]string{" , "}, 2, "", true},
	}
	for _, tt := range tests {
		got, ok := pickFromRight(tt.instances, tt.n)
		if got != tt.want || ok != tt.ok {
			t.Errorf("pickFromRight(%q, %d) = %q, %v, want %q, %v", tt.instances, tt.n, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		in, want string // want "" means rejected; it is the http form
	}{
		{"sso.example.com", "sso.example.com"},
		{"SSO.Example.COM:8443", "sso.example.com:8443"},
		{"localhost:80", "localhost"},
		{"my_service:8080", "my_service:8080"},
		{"a-b.c", "a-b.c"},
		{"192.0.2.1:0080", "192.0.2.1"},
		{"[2001:DB8:0::1]:443", "[2001:db8::1]:443"},
		{"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"", ""},
		{":80", ""},
		{"example.com:", ""},
		{"example.com:0", ""},
		{"example.com:65536", ""},
		{"example.com:+80", ""},
		{"example.com:80:80", ""},
		{"example.com.", ""},
		{"example..com", ""},
		{".example.com", ""},
		{"user@example.com", ""},
		{"example.com/path", ""},
		{`example.com\path`, ""},
		{"example.com?x", ""},
		{"example.com#x", ""},
		{"exa mple.com", ""},
		{"example.com\r\n", ""},
		{"example.com\x00", ""},
		{"ex%61mple.com", ""},
		{"bücher.example", ""},
		{"\u212Aelvin.example", ""},
		{"2001:db8::1", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]x", ""},
		{"[fe80::1%eth0]", ""},
		{"[192.0.2.1]", ""},
		{"192.0.2", ""},
		{"010.0.0.1", ""},
		{"1.2.3.4.5", ""},
		{"0x7f.1", ""},
		{"example.0x", ""},
		{"example.123", ""},
		{"123.example", "123.example"},
		{string(make([]byte, 64)) + ".com", ""},
	}
	for _, tt := range tests {
		h, err := parseHost(tt.in)
		got := ""
		if err == nil {
			got = h.format("http")
		}
		if got != tt.want {
			t.Errorf("parseHost(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/auth", "/auth", true},
		{"/auth/", "/auth", true},
		{"/", "", true},
		{"/a/b-c_d.e~f", "/a/b-c_d.e~f", true},
		{"/a.b/..c", "/a.b/..c", true},
		{"", "", false},
		{"auth", "", false},
		{"//evil.example", "", false},
		{"/a//b", "", false},
		{"/a//", "", false},
		{"/a/./b", "", false},
		{"/a/../b", "", false},
		{"/..", "", false},
		{"/.", "", false},
		{`/a\b`, "", false},
		{"/a%2e%2e", "", false},
		{"/a?b", "", false},
		{"/a#b", "", false},
		{"/a b", "", false},
		{"/a\n", "", false},
		{"/a:b", "", false},
		{"/a@b", "", false},
		{"/ü", "", false},
	}
	for _, tt := range tests {
		got, err := parsePrefix(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parsePrefix(%q) = %q, %v, want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseNode(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		in   string
		want node
		ok   bool
	}{
		{"192.0.2.43", node{addr: ip("192.0.2.43")}, true},
		{"192.0.2.43:4711", node{addr: ip("192.0.2.43"), port: 4711}, true},
		{"192.0.2.43:_p", node{addr: ip("192.0.2.43")}, true},
		{"[2001:db8:cafe::17]", node{addr: ip("2001:db8:cafe::17")}, true},
		{"[2001:db8:cafe::17]:4711", node{addr: ip("2001:db8:cafe::17"), port: 4711}, true},
		{"2001:DB8:cafe::17", node{addr: ip("2001:db8:cafe::17")}, true},
		{"::ffff:192.0.2.1", node{addr: ip("192.0.2.1")}, true},
		{"unknown", node{name: "unknown"}, true},
		{"UNKNOWN:8080", node{name: "unknown", port: 8080}, true},
		{"_hidden", node{name: "_hidden"}, true},
		{"_SEVKISEK.x-y_z", node{name: "_SEVKISEK.x-y_z"}, true},
		{"_hidden:_port", node{name: "_hidden"}, true},
		{"", node{}, false},
		{"_", node{}, false},
		{"_a b", node{}, false},
		{"_a/b", node{}, false},
		{"hidden", node{}, false},
		{"localhost", node{}, false},
		{"192.0.2.43:", node{}, false},
		{"192.0.2.43:65536", node{}, false},
		{"192.0.2.43:-1", node{}, false},
		{"192.0.2.43:1:2", node{}, false},
		{"192.0.2.043", node{}, false},
		{"[192.0.2.43]", node{}, false},
		{"[2001:db8::1]4711", node{}, false},
		{"[2001:db8::1", node{}, false},
		{"fe80::1%eth0", node{}, false},
		{"[fe80::1%eth0]:1", node{}, false},
		{"192.0.2.43\r\n", node{}, false},
	}
	for _, tt := range tests {
		got, err := parseNode(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseNode(%q) = %+v, %v, want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseProtoAndPort(t *testing.T) {
	for in, want := range map[string]string{"http": "http", "HTTPS": "https", "Https": "https", "ftp": "", "": "", "https ": "", "ws": ""} {
		if got, _ := parseProto(in); got != want {
			t.Errorf("parseProto(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"443": "443", "1": "1", "65535": "65535", "00080": "80", "0": "", "65536": "", "-1": "", "+1": "", "": "", "123456": "", "8 0": "", "٣": ""} {
		if got, _ := parsePort(in); got != want {
			t.Errorf("parsePort(%q) = %q, want %q", in, got, want)
		}
	}
}
