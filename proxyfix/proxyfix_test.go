package proxyfix

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// in describes a request as the broker receives it from its direct peer.
type in struct {
	remote  string      // RemoteAddr; default "10.0.0.2:5555" (the proxy)
	host    string      // r.Host; default "backend:8080"
	tls     bool        // whether the connection is TLS
	headers [][2]string // added in order with Header.Add
}

// view is what a test asserts: the facts plus the rewritten request.
type view struct {
	Scheme, Host, Prefix, Client string
	Trusted                      bool
	RemoteAddr, ReqHost          string // of the request next receives
}

// conn is the view of the default request when no header is trusted.
var conn = view{Scheme: "http", Host: "backend:8080", Client: "10.0.0.2", RemoteAddr: "10.0.0.2:5555", ReqHost: "backend:8080"}

// trusted returns conn with the given changes applied and Trusted set.
func trusted(change func(v *view)) view {
	v := conn
	v.Trusted = true
	change(&v)
	return v
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRequest(i in) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://backend/x", nil)
	r.RemoteAddr, r.Host = i.remote, i.host
	if r.RemoteAddr == "" {
		r.RemoteAddr = "10.0.0.2:5555"
	}
	if r.Host == "" {
		r.Host = "backend:8080"
	}
	if i.tls {
		r.TLS = &tls.ConnectionState{}
	}
	for _, h := range i.headers {
		r.Header.Add(h[0], h[1])
	}
	return r
}

// serve runs r through the Handler of cfg and returns the view next saw.
func serve(t *testing.T, cfg Config, r *http.Request) (view, Facts) {
	t.Helper()
	fix, err := New(cfg, discard)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var got view
	var facts Facts
	rec := httptest.NewRecorder()
	fix.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		facts = FromRequest(r)
		got = view{
			Scheme: facts.Scheme, Host: facts.Host, Prefix: facts.Prefix, Client: facts.ClientNode,
			Trusted: facts.Trusted, RemoteAddr: r.RemoteAddr, ReqHost: r.Host,
		}
	})).ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	return got, facts
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected error; nil means valid
	}{
		{"zero value", Config{}, nil},
		{"all one hop", Config{XFor: 1, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1}, nil},
		{"forwarded alone", Config{Forwarded: 2, From: []string{"10.0.0.0/8", "::1", "127.0.0.1"}}, nil},
		{"max", Config{XFor: 10}, nil},
		{"negative", Config{XHost: -1}, []string{"x_host: must be between 0 and 10, got -1"}},
		{"too large", Config{XFor: 11, XPort: 12}, []string{
			"x_for: must be between 0 and 10, got 11", "x_port: must be between 0 and 10, got 12",
		}},
		{"forwarded too large", Config{Forwarded: 99}, []string{"forwarded: must be between 0 and 10, got 99"}},
		{"mixed", Config{Forwarded: 1, XFor: 1, XPrefix: 2}, []string{
			"forwarded: cannot be combined with x_for, x_prefix",
		}},
		{"bad from", Config{XFor: 1, From: []string{"10.0.0.0/8", "", "10.0.0.0/33", "fe80::1%eth0", "host.example"}}, []string{
			`from[1]: "" is not a CIDR`, `from[2]: "10.0.0.0/33" is not a CIDR`,
			`from[3]: "fe80::1%eth0" is not a CIDR`, `from[4]: "host.example" is not a CIDR`,
		}},
		{"everything at once", Config{XProto: -3, Forwarded: 1, From: []string{"x"}}, []string{
			"x_proto: must be between", "from[0]:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing %q", err, w)
				}
			}
			if _, nerr := New(tt.cfg, nil); nerr == nil || nerr.Error() != "proxyfix: invalid config: "+err.Error() {
				t.Errorf("New() error = %v, want the Validate error prefixed", nerr)
			}
		})
	}
}

func TestConfigEnabled(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, false},
		{Config{From: []string{"10.0.0.0/8"}}, false},
		{Config{XPrefix: 1}, true},
		{Config{Forwarded: 1}, true},
		{Config{XFor: -1}, false},
	} {
		if got := tt.cfg.Enabled(); got != tt.want {
			t.Errorf("%+v.Enabled() = %v, want %v", tt.cfg, got, tt.want)
		}
	}
}

// TestWerkzeugExamples replays the cases of Werkzeug's own ProxyFix tests
// (tests/middleware/test_proxy_fix.py), whose semantics this package follows. In every
// case the effective client is 192.168.0.1. Werkzeug's defaults (x_for=1, x_proto=1) are
// spelled out, since ours are 0.
func TestWerkzeugExamples(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		remote  string
		host    string
		headers [][2]string
		baseURL string
	}{
		{"for", Config{XFor: 1, XProto: 1}, "192.168.0.2:80", "spam",
			[][2]string{{hdrFor, "192.168.0.1"}, {hdrProto, "https"}}, "https://spam"},
		{"proto", Config{XProto: 1}, "", "spam", [][2]string{{hdrProto, "https"}}, "https://spam"},
		{"host", Config{XHost: 1}, "", "spam", [][2]string{{hdrHost, "eggs"}}, "http://eggs"},
		{"port, host without port", Config{XPort: 1}, "", "spam", [][2]string{{hdrPort, "8080"}}, "http://spam:8080"},
		{"port, host with port", Config{XPort: 1}, "", "spam:9000", [][2]string{{hdrPort, "8080"}}, "http://spam:8080"},
		{"prefix", Config{XPrefix: 1}, "", "spam", [][2]string{{hdrPrefix, "/eggs"}}, "http://spam/eggs"},
		{"all", Config{XFor: 1, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1}, "192.168.0.2:80", "spam:9000",
			[][2]string{
				{hdrFor, "192.168.0.1"}, {hdrProto, "https"}, {hdrHost, "eggs"},
				{hdrPort, "443"}, {hdrPrefix, "/ham"},
			}, "https://eggs/ham"},
		{"multiple for", Config{XFor: 2}, "192.168.0.3:80", "spam",
			[][2]string{{hdrFor, "192.168.0.1, 192.168.0.2"}}, "http://spam"},
		{"ignore 0", Config{XFor: 0}, "", "spam", [][2]string{{hdrFor, "192.168.0.2"}}, "http://spam"},
		{"ignore len < trusted", Config{XFor: 3}, "", "spam",
			[][2]string{{hdrFor, "192.168.0.3, 192.168.0.2"}}, "http://spam"},
		{"ignore untrusted", Config{XFor: 1, XProto: 1}, "192.168.0.2:80", "spam",
			[][2]string{{hdrFor, "192.168.0.3, 192.168.0.1"}}, "http://spam"},
		{"ignore empty", Config{XFor: 2}, "", "spam", [][2]string{{hdrFor, ", 192.168.0.3"}}, "http://spam"},
		{"prefix < for", Config{XFor: 2, XPrefix: 1}, "192.168.0.2:80", "spam",
			[][2]string{{hdrFor, "192.168.0.1, 192.168.0.3"}, {hdrPrefix, "/ham, /eggs"}}, "http://spam/eggs"},
		{"ipv6 host", Config{XHost: 1}, "", "spam", [][2]string{{hdrHost, "[2001:db8::a]"}}, "http://[2001:db8::a]"},
		{"ipv6 port, host without port", Config{XPort: 1}, "", "[2001:db8::a]",
			[][2]string{{hdrPort, "8080"}}, "http://[2001:db8::a]:8080"},
		{"ipv6 port, host with port", Config{XPort: 1}, "", "[2001:db8::a]:9000",
			[][2]string{{hdrPort, "8080"}}, "http://[2001:db8::a]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := tt.remote
			if remote == "" {
				remote = "192.168.0.1:80"
			}
			_, facts := serve(t, tt.cfg, newRequest(in{remote: remote, host: tt.host, headers: tt.headers}))
			if got := facts.BaseURL(); got != tt.baseURL {
				t.Errorf("BaseURL() = %q, want %q", got, tt.baseURL)
			}
			if got := facts.ClientIP.String(); got != "192.168.0.1" {
				t.Errorf("ClientIP = %s, want 192.168.0.1", got)
			}
		})
	}
}

// TestXForwardedSpoofing sends client-forged and proxy-appended X-Forwarded-* headers
// through various counts; the broker is behind one proxy at 10.0.0.2 unless said otherwise.
func TestXForwardedSpoofing(t *testing.T) {
	all1 := Config{XFor: 1, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1}
	forged := [][2]string{
		{hdrFor, "6.6.6.6"}, {hdrProto, "https"}, {hdrHost, "evil.example"},
		{hdrPort, "4444"}, {hdrPrefix, "/evil"},
	}
	tests := []struct {
		name string
		cfg  Config
		in   in
		want view
	}{
		{"count 0 ignores forged headers", Config{}, in{headers: forged}, conn},
		{"count 0 with from ignores forged headers", Config{From: []string{"0.0.0.0/0"}}, in{headers: forged}, conn},
		{"count 1 takes the proxy's value over the client's", all1, in{headers: [][2]string{
			{hdrFor, "6.6.6.6, 203.0.113.7"}, {hdrProto, "http, https"}, {hdrHost, "evil.example, sso.example.com"},
			{hdrPrefix, "/evil,/auth"},
		}}, trusted(func(v *view) {
			v.Scheme, v.Host, v.Prefix, v.Client = "https", "sso.example.com", "/auth", "203.0.113.7"
			v.RemoteAddr, v.ReqHost = "203.0.113.7:0", "sso.example.com"
		})},
		{"count 1 when the proxy does not set the header: the client wins (misconfiguration)",
			Config{XHost: 1}, in{headers: [][2]string{{hdrHost, "evil.example"}}},
			trusted(func(v *view) { v.Host, v.ReqHost = "evil.example", "evil.example" })},
		{"count 2 behind two proxies", Config{XFor: 2}, in{headers: [][2]string{
			{hdrFor, "6.6.6.6, 203.0.113.7, 10.0.0.1"},
		}}, trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:0" })},
		{"count 2 with one value is ignored, never falls back", Config{XFor: 2, XHost: 2}, in{headers: [][2]string{
			{hdrFor, "203.0.113.7"}, {hdrHost, "evil.example"},
		}}, conn},
		{"count larger than the chain: too few values, ignored", Config{XFor: 3}, in{headers: [][2]string{
			{hdrFor, "203.0.113.7, 10.0.0.1"},
		}}, conn},
		{"count larger than the chain: a padding client chooses (misconfiguration)", Config{XFor: 2}, in{headers: [][2]string{
			{hdrFor, "6.6.6.6, 203.0.113.7"},
		}}, trusted(func(v *view) { v.Client, v.RemoteAddr = "6.6.6.6", "6.6.6.6:0" })},
		{"instances are counted together, right-most last", Config{XFor: 1}, in{headers: [][2]string{
			{hdrFor, "6.6.6.6"}, {hdrFor, "7.7.7.7, 203.0.113.7"},
		}}, trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:0" })},
		{"instances are counted together, third from the right", Config{XFor: 3}, in{headers: [][2]string{
			{hdrFor, "6.6.6.6"}, {hdrFor, "7.7.7.7, 203.0.113.7"},
		}}, trusted(func(v *view) { v.Client, v.RemoteAddr = "6.6.6.6", "6.6.6.6:0" })},
		{"empty right-most value is ignored", Config{XFor: 1}, in{headers: [][2]string{{hdrFor, "203.0.113.7, "}}}, conn},
		{"garbage everywhere", all1, in{headers: [][2]string{
			{hdrFor, "not-an-ip"}, {hdrProto, "javascript"}, {hdrHost, "user@evil.example"},
			{hdrPort, "0x50"}, {hdrPrefix, "auth"},
		}}, conn},
		{"host with path", all1, in{headers: [][2]string{{hdrHost, "evil.example/x"}}}, conn},
		{"host with backslash", all1, in{headers: [][2]string{{hdrHost, `evil.example\x`}}}, conn},
		{"host with space", all1, in{headers: [][2]string{{hdrHost, "evil example"}}}, conn},
		{"host with bad port", all1, in{headers: [][2]string{{hdrHost, "sso.example.com:65536"}}}, conn},
		{"host with empty port", all1, in{headers: [][2]string{{hdrHost, "sso.example.com:"}}}, conn},
		{"host ending in a number", all1, in{headers: [][2]string{{hdrHost, "0x7f.1"}}}, conn},
		{"host with percent", all1, in{headers: [][2]string{{hdrHost, "evil%2eexample"}}}, conn},
		{"CR LF in host", all1, in{headers: [][2]string{{hdrHost, "sso.example.com\r\nSet-Cookie: a=b"}}}, conn},
		{"CR LF in proto", all1, in{headers: [][2]string{{hdrProto, "https\r\n"}}}, conn},
		{"NUL in for", all1, in{headers: [][2]string{{hdrFor, "203.0.113.7\x00"}}}, conn},
		{"LF in prefix", all1, in{headers: [][2]string{{hdrPrefix, "/auth\n"}}}, conn},
		{"prefix tricks", all1, in{headers: [][2]string{{hdrPrefix, "//evil.example"}}}, conn},
		{"prefix dot-dot", all1, in{headers: [][2]string{{hdrPrefix, "/a/../b"}}}, conn},
		{"prefix percent", all1, in{headers: [][2]string{{hdrPrefix, "/a%2f..%2fb"}}}, conn},
		{"prefix query", all1, in{headers: [][2]string{{hdrPrefix, "/a?b"}}}, conn},
		{"prefix trailing slash stripped", all1, in{headers: [][2]string{{hdrPrefix, "/auth/"}}},
			trusted(func(v *view) { v.Prefix = "/auth" })},
		{"prefix root", all1, in{headers: [][2]string{{hdrPrefix, "/"}}}, trusted(func(v *view) {})},
		{"proto upper case is normalized", all1, in{headers: [][2]string{{hdrProto, "HTTPS"}}},
			trusted(func(v *view) { v.Scheme = "https" })},
		{"host is lower-cased", all1, in{headers: [][2]string{{hdrHost, "SSO.Example.COM"}}},
			trusted(func(v *view) { v.Host, v.ReqHost = "sso.example.com", "sso.example.com" })},
		{"default port omitted after proto", all1, in{host: "backend:443", headers: [][2]string{{hdrProto, "https"}}},
			trusted(func(v *view) { v.Scheme, v.Host, v.ReqHost = "https", "backend", "backend" })},
		{"port applies after host and is omitted when default", all1, in{headers: [][2]string{
			{hdrProto, "https"}, {hdrHost, "sso.example.com:8443"}, {hdrPort, "443"},
		}}, trusted(func(v *view) { v.Scheme, v.Host, v.ReqHost = "https", "sso.example.com", "sso.example.com" })},
		{"port replaces the connection's port", all1, in{headers: [][2]string{{hdrPort, "8443"}}},
			trusted(func(v *view) { v.Host, v.ReqHost = "backend:8443", "backend:8443" })},
		{"invalid port is ignored, host still applies", all1, in{headers: [][2]string{
			{hdrHost, "sso.example.com"}, {hdrPort, "99999"},
		}}, trusted(func(v *view) { v.Host, v.ReqHost = "sso.example.com", "sso.example.com" })},
		{"port without a valid host is ignored", all1, in{host: "bad host", headers: [][2]string{{hdrPort, "8443"}}},
			func() view { v := conn; v.Host, v.ReqHost = "bad host", "bad host"; return v }()},
		{"for with port", all1, in{headers: [][2]string{{hdrFor, "203.0.113.7:4711"}}},
			trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:4711" })},
		{"for IPv6", all1, in{headers: [][2]string{{hdrFor, "2001:DB8::1"}}},
			trusted(func(v *view) { v.Client, v.RemoteAddr = "2001:db8::1", "[2001:db8::1]:0" })},
		{"for bracketed IPv6 with port", all1, in{headers: [][2]string{{hdrFor, "[2001:db8::1]:4711"}}},
			trusted(func(v *view) { v.Client, v.RemoteAddr = "2001:db8::1", "[2001:db8::1]:4711" })},
		{"for IPv4-mapped IPv6 is unmapped", all1, in{headers: [][2]string{{hdrFor, "::ffff:203.0.113.7"}}},
			trusted(func(v *view) { v.Client, v.RemoteAddr = "203.0.113.7", "203.0.113.7:0" })},
		{"for with zone is rejected", all1, in{headers: [][2]string{{hdrFor, "fe80::1%eth0"}}}, conn},
		{"for obfuscated", all1, in{headers: [][2]string{{hdrFor, "_hidden"}}},
			trusted(func(v *view) { v.Client, v.RemoteAddr = "_hidden", "_hidden:0" })},
		{"host IPv6 with port", all1, in{headers: [][2]string{{hdrHost, "[2001:DB8::A]:8443"}}},
			trusted(func(v *view) { v.Host, v.ReqHost = "[2001:db8::a]:8443", "[2001:db8::a]:8443" })},
		{"host IPv6 without brackets is rejected", all1, in{headers: [][2]string{{hdrHost, "2001:db8::a"}}}, conn},
		{"host IPv6 with zone is rejected", all1, in{headers: [][2]string{{hdrHost, "[fe80::1%25eth0]"}}}, conn},
		{"X-Forwarded-* ignored in forwarded mode", Config{Forwarded: 1}, in{headers: forged}, conn},
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

func TestFrom(t *testing.T) {
	headers := [][2]string{{hdrFor, "203.0.113.7"}, {hdrProto, "https"}}
	applied := view{Scheme: "https", Host: "backend:8080", Client: "203.0.113.7", Trusted: true,
		RemoteAddr: "203.0.113.7:0", ReqHost: "backend:8080"}
	untrusted := func(remote, client string) view {
		return view{Scheme: "http", Host: "backend:8080", Client: client, RemoteAddr: remote, ReqHost: "backend:8080"}
	}
	tests := []struct {
		name   string
		from   []string
		remote string
		want   view
	}{
		{"empty from trusts any peer", nil, "192.0.2.1:1", applied},
		{"peer inside", []string{"10.0.0.0/8"}, "10.1.2.3:1", applied},
		{"peer outside", []string{"10.0.0.0/8"}, "192.0.2.1:1", untrusted("192.0.2.1:1", "192.0.2.1")},
		{"bare IP matches itself", []string{"127.0.0.1"}, "127.0.0.1:1", applied},
		{"bare IP matches nothing else", []string{"127.0.0.1"}, "127.0.0.2:1", untrusted("127.0.0.2:1", "127.0.0.2")},
		{"IPv4-mapped peer matches IPv4 CIDR", []string{"127.0.0.1"}, "[::ffff:127.0.0.1]:1", applied},
		{"IPv4-mapped CIDR matches IPv4 peer", []string{"::ffff:10.0.0.0/104"}, "10.9.9.9:1", applied},
		{"IPv6 loopback", []string{"::1"}, "[::1]:1", applied},
		{"IPv6 peer with zone", []string{"fe80::/10"}, "[fe80::1%eth0]:1", applied},
		{"IPv6 peer outside", []string{"2001:db8::/32"}, "[2001:db9::1]:1", untrusted("[2001:db9::1]:1", "2001:db9::1")},
		{"unix socket peer never matches", []string{"0.0.0.0/0", "::/0"}, "@", untrusted("@", "@")},
		{"unparseable peer never matches", []string{"0.0.0.0/0"}, "not-an-addr", untrusted("not-an-addr", "not-an-addr")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{XFor: 1, XProto: 1, From: tt.from}
			got, _ := serve(t, cfg, newRequest(in{remote: tt.remote, headers: headers}))
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
