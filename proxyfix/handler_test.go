package proxyfix

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHandlerRewritesACopy(t *testing.T) {
	fix, err := New(Config{XFor: 1, XProto: 1, XHost: 1, XPrefix: 1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	r := newRequest(in{headers: [][2]string{
		{hdrFor, "203.0.113.7"}, {hdrProto, "https"}, {hdrHost, "sso.example.com"}, {hdrPrefix, "/auth"},
	}})
	r.URL.Scheme, r.URL.Host = "", "" // as on a server request
	var got *http.Request
	fix.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r })).
		ServeHTTP(httptest.NewRecorder(), r)

	if got.Host != "sso.example.com" || got.RemoteAddr != "203.0.113.7:0" {
		t.Errorf("next saw Host %q RemoteAddr %q", got.Host, got.RemoteAddr)
	}
	if got.URL.Scheme != "" || got.URL.Host != "" || got.URL.Path != "/x" {
		t.Errorf("URL changed to %q", got.URL)
	}
	if got.Header.Get(hdrHost) != "sso.example.com" || got.Header.Get(hdrFor) != "203.0.113.7" {
		t.Errorf("headers were removed: %v", got.Header)
	}
	if r.Host != "backend:8080" || r.RemoteAddr != "10.0.0.2:5555" {
		t.Errorf("caller's request mutated: Host %q RemoteAddr %q", r.Host, r.RemoteAddr)
	}
	want := Facts{
		Scheme: "https", Host: "sso.example.com", Prefix: "/auth",
		ClientIP: netip.MustParseAddr("203.0.113.7"), ClientNode: "203.0.113.7", Trusted: true,
		Original: Original{RemoteAddr: "10.0.0.2:5555", Host: "backend:8080", Scheme: "http", Peer: netip.MustParseAddr("10.0.0.2")},
	}
	if f := FromRequest(got); f != want {
		t.Errorf("FromRequest\n got  %+v\n want %+v", f, want)
	}
	if f := FromRequest(got); f.BaseURL() != "https://sso.example.com/auth" {
		t.Errorf("BaseURL() = %q", f.BaseURL())
	}
}

func TestHandlerTwiceAppliesOnce(t *testing.T) {
	fix, err := New(Config{XFor: 1}, discard)
	if err != nil {
		t.Fatal(err)
	}
	// Applied twice, a second pass would take 6.6.6.6 relative to the rewritten request.
	r := newRequest(in{headers: [][2]string{{hdrFor, "6.6.6.6, 203.0.113.7"}}})
	var got Facts
	h := fix.Handler(fix.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = FromRequest(r) })))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.ClientNode != "203.0.113.7" || got.Original.RemoteAddr != "10.0.0.2:5555" {
		t.Errorf("got %+v", got)
	}
}

func TestFromRequestWithoutHandler(t *testing.T) {
	tests := []struct {
		name string
		in   in
		want Facts
	}{
		{"plain", in{headers: [][2]string{{hdrProto, "https"}, {hdrHost, "evil.example"}}}, Facts{
			Scheme: "http", Host: "backend:8080", ClientIP: netip.MustParseAddr("10.0.0.2"), ClientNode: "10.0.0.2",
			Original: Original{RemoteAddr: "10.0.0.2:5555", Host: "backend:8080", Scheme: "http", Peer: netip.MustParseAddr("10.0.0.2")},
		}},
		{"TLS, default port omitted, host lower-cased", in{tls: true, host: "SSO.example.com:443", remote: "[::ffff:192.0.2.1]:9"}, Facts{
			Scheme: "https", Host: "sso.example.com", ClientIP: netip.MustParseAddr("192.0.2.1"), ClientNode: "192.0.2.1",
			Original: Original{RemoteAddr: "[::ffff:192.0.2.1]:9", Host: "SSO.example.com:443", Scheme: "https", Peer: netip.MustParseAddr("192.0.2.1")},
		}},
		{"invalid host kept as is, unix socket peer", in{host: "bad host", remote: "@"}, Facts{
			Scheme: "http", Host: "bad host", ClientNode: "@",
			Original: Original{RemoteAddr: "@", Host: "bad host", Scheme: "http"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromRequest(newRequest(tt.in)); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestRawRequestHeaderCase reads requests off the wire: header names in any case are the
// same header, and instances keep their order.
func TestRawRequestHeaderCase(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		raw  string
		want view
	}{
		{"X-Forwarded-*", Config{XFor: 1, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1}, "GET /x HTTP/1.1\r\n" +
			"Host: backend:8080\r\n" +
			"x-forwarded-FOR: 6.6.6.6\r\n" +
			"X-FORWARDED-for: 203.0.113.7\r\n" +
			"x-Forwarded-Proto: HTTPS\r\n" +
			"X-FORWARDED-HOST: SSO.Example.com\r\n" +
			"x-forwarded-port: 8443\r\n" +
			"X-Forwarded-PREFIX: /auth\r\n\r\n",
			trusted(func(v *view) {
				v.Scheme, v.Host, v.Prefix, v.Client = "https", "sso.example.com:8443", "/auth", "203.0.113.7"
				v.RemoteAddr, v.ReqHost = "203.0.113.7:0", "sso.example.com:8443"
			})},
		{"Forwarded", Config{Forwarded: 1}, "GET /x HTTP/1.1\r\n" +
			"Host: backend:8080\r\n" +
			"forwarded: for=6.6.6.6;host=evil.example\r\n" +
			"FORWARDED: For=\"[2001:db8::1]:4711\";Proto=https;Host=sso.example.com\r\n\r\n",
			trusted(func(v *view) {
				v.Scheme, v.Host, v.Client = "https", "sso.example.com", "2001:db8::1"
				v.RemoteAddr, v.ReqHost = "[2001:db8::1]:4711", "sso.example.com"
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.raw)))
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr = "10.0.0.2:5555"
			got, _ := serve(t, tt.cfg, r)
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestNeverFails sends hostile raw requests to a real server: net/http may refuse some
// with 400, but the middleware never turns header content into a 5xx.
func TestNeverFails(t *testing.T) {
	for _, cfg := range []Config{
		{XFor: 2, XProto: 1, XHost: 1, XPort: 1, XPrefix: 1},
		{Forwarded: 1, From: []string{"127.0.0.1"}},
	} {
		fix, err := New(cfg, discard)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(fix.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f := FromRequest(r)
			if f.Scheme != "http" && f.Scheme != "https" {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})))
		for _, h := range []string{
			"X-Forwarded-For: " + strings.Repeat(",", 100000),
			"X-Forwarded-Host: " + strings.Repeat("a.", 200) + "com",
			"X-Forwarded-Host: \xff\xfe",
			"X-Forwarded-Proto: \x01",
			"X-Forwarded-Prefix: /" + strings.Repeat("a/", 1000),
			"X-Forwarded-Port: -1",
			"Forwarded: " + strings.Repeat(`x="\"`, 1000),
			"Forwarded: for=\"\xff\"",
			"Forwarded: " + strings.Repeat(";", 10000),
			"X-Forwarded-Host: a\r\n evil.example", // obsolete line folding
		} {
			code := rawStatus(t, srv.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: x\r\n"+h+"\r\nConnection: close\r\n\r\n")
			if code >= 500 || code == 0 {
				t.Errorf("%+v: %.60q gave status %d", cfg, h, code)
			}
		}
		srv.Close()
	}
}

func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// recorder is a slog.Handler keeping every record.
type recorder struct {
	mu      sync.Mutex
	level   slog.Level
	records []slog.Record
}

func (h *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recorder) WithGroup(string) slog.Handler                { return h }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

func TestRejectionsAreLoggedAtDebug(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		in         in
		header     string
		reasonPart string
	}{
		{"invalid host", Config{XHost: 1}, in{headers: [][2]string{{hdrHost, "a/b"}}}, hdrHost, "DNS name"},
		{"too few values", Config{XFor: 2}, in{headers: [][2]string{{hdrFor, "1.2.3.4"}}}, hdrFor, "fewer values than x_for=2"},
		{"malformed Forwarded", Config{Forwarded: 1}, in{headers: [][2]string{{hdrForwarded, `for="`}}}, hdrForwarded, "unterminated"},
		{"peer not in from", Config{XProto: 1, From: []string{"192.0.2.0/24"}}, in{headers: [][2]string{{hdrProto, "https"}}}, hdrProto, "not in from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{level: slog.LevelDebug}
			fix, err := New(tt.cfg, slog.New(rec))
			if err != nil {
				t.Fatal(err)
			}
			fix.Handler(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), newRequest(tt.in))
			if len(rec.records) != 1 {
				t.Fatalf("got %d records, want 1", len(rec.records))
			}
			r := rec.records[0]
			attrs := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			if r.Level != slog.LevelDebug || attrs["header"] != tt.header || !strings.Contains(attrs["reason"], tt.reasonPart) {
				t.Errorf("got %v %q %v", r.Level, r.Message, attrs)
			}

			quiet := &recorder{level: slog.LevelInfo}
			fix, _ = New(tt.cfg, slog.New(quiet))
			fix.Handler(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), newRequest(tt.in))
			if len(quiet.records) != 0 {
				t.Errorf("logged above Debug: %v", quiet.records)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	fix, err := New(Config{XFor: 1, XHost: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := fix.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromRequest(r).Host != "sso.example.com" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, newRequest(in{tls: true, headers: [][2]string{{hdrHost, "sso.example.com"}}}))
				if rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
		hdr  [][2]string
	}{
		{"untrusted", Config{}, nil},
		{"one hop", Config{XFor: 1, XProto: 1, XHost: 1, XPort: 1, From: []string{"127.0.0.1"}}, [][2]string{
			{hdrFor, "203.0.113.7"}, {hdrProto, "https"}, {hdrHost, "sso.example.com"}, {hdrPort, "443"},
		}},
		{"forwarded", Config{Forwarded: 1}, [][2]string{{hdrForwarded, `for="[2001:db8::1]:4711";proto=https;host=sso.example.com`}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fix, err := New(bc.cfg, discard)
			if err != nil {
				b.Fatal(err)
			}
			h := fix.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := newRequest(in{remote: "127.0.0.1:5555", headers: bc.hdr})
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkResolve is the work of one request without the context and the
// copy (what the broker's entry calls), for the Host headers clients send.
func BenchmarkResolve(b *testing.B) {
	fix, err := New(Config{}, discard)
	if err != nil {
		b.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1:8080", "sso.example.com", "[2001:db8::1]:8443"} {
		b.Run(host, func(b *testing.B) {
			r := newRequest(in{remote: "127.0.0.1:5555", host: host})
			b.ReportAllocs()
			for b.Loop() {
				if f, _ := fix.Resolve(r); f.Host == "" {
					b.Fatal("no host")
				}
			}
		})
	}
}

// TestPeerListed: the direct peer is judged on the connection's address,
// through Handler's facts, through facts a caller built without Peer, and
// as an address given to Listed (IPv4-mapped counts as IPv4), never on a
// forwarded client address.
func TestPeerListed(t *testing.T) {
	fix, err := New(Config{XFor: 1, From: []string{"10.0.0.0/8"}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	var viaHandler bool
	h := fix.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { viaHandler = fix.PeerListed(r) }))
	h.ServeHTTP(httptest.NewRecorder(), newRequest(in{headers: [][2]string{{hdrFor, "203.0.113.7"}}}))
	if !viaHandler {
		t.Error("the proxy 10.0.0.2 is not listed once Handler rewrote RemoteAddr to the client's")
	}
	h.ServeHTTP(httptest.NewRecorder(), newRequest(in{remote: "203.0.113.7:1", headers: [][2]string{{hdrFor, "10.0.0.9"}}}))
	if viaHandler {
		t.Error("a client outside from is listed because it claims a listed address")
	}

	r := newRequest(in{})
	own := r.WithContext(NewContext(r.Context(), &Facts{Original: Original{RemoteAddr: "10.0.0.2:5555"}}))
	if !fix.PeerListed(own) {
		t.Error("facts built without Peer: the peer is not judged on Original.RemoteAddr")
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "192.0.2.1": false, "fe80::1%eth0": false} {
		if got := fix.Listed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Listed(%s) = %v", addr, got)
		}
	}
	if fix.Listed(netip.Addr{}) {
		t.Error("the zero Addr is listed")
	}
}
