package broker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// switchingApp is an upstream that switches protocols on any Upgrade header,
// as Hypercorn does on "Upgrade: h2c" alone: it answers 101 with the
// Upgrade the request named (or with the header lines of answer, when set,
// to every request), and otherwise echoes the request as echoApp does. It
// records the headers of the last request.
type switchingApp struct {
	*httptest.Server
	answer string // the 101's header lines; "" for Upgrade: the request's

	mu   sync.Mutex
	last http.Header
}

func newSwitchingApp(t *testing.T, answer string) *switchingApp {
	t.Helper()
	a := &switchingApp{answer: answer}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		if up := r.Header.Values("Upgrade"); len(up) > 0 || answer != "" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			lines := "Connection: Upgrade\r\nUpgrade: " + strings.Join(up, ", ") + "\r\n"
			if answer != "" {
				lines = answer
			}
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", lines)
			_ = brw.Flush()
			_, _ = bufio.NewReader(conn).ReadByte() // until the client goes
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{App: "switching", Path: r.URL.EscapedPath(), Header: r.Header})
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *switchingApp) lastHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// sendUpgrade sends GET path to the broker with the headers hdr (values
// joined as given, several lines for several values) and returns the status
// and the response.
func sendUpgrade(t *testing.T, c *http.Client, rawURL string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestProxyPassesOnlyWebSocketUpgrades: an upstream that switches
// protocols on any Upgrade (Hypercorn on h2c) would give the client HTTP/2
// straight to the app, past every access rule. Through the broker, on a
// public route anonymously and on a protected one signed in, any Upgrade
// but a lone "websocket" reaches the app as a plain request: no Upgrade, no
// HTTP2-Settings, no Connection: upgrade, and the client gets no 101. A
// WebSocket upgrade still passes.
func TestProxyPassesOnlyWebSocketUpgrades(t *testing.T) {
	app := newSwitchingApp(t, "")
	e := newEnv(t, withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}}
		c.Routes = []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}}
	}))
	h2c := http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade, HTTP2-Settings"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}
	others := []http.Header{h2c}
	for _, up := range [][]string{{"websocket, h2c"}, {"h2c, websocket"}, {"websocket", "h2c"}, {"WebSocket/13"}, {"TLS/1.2"}} {
		others = append(others, http.Header{"Upgrade": up, "Connection": {"upgrade"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}})
	}
	refused := func(who, path string, c *http.Client) {
		for _, hdr := range others {
			resp := sendUpgrade(t, c, e.broker.URL+path, hdr)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s, %s with Upgrade %q: status %d, want 200 (a plain request)", who, path, hdr["Upgrade"], resp.StatusCode)
				continue
			}
			got := app.lastHeader()
			if got.Get("Upgrade") != "" || got.Get("Http2-Settings") != "" || strings.Contains(strings.ToLower(got.Get("Connection")), "upgrade") {
				t.Errorf("%s, %s with Upgrade %q: the app received Upgrade %q, HTTP2-Settings %q, Connection %q",
					who, path, hdr["Upgrade"], got.Values("Upgrade"), got.Get("Http2-Settings"), got.Get("Connection"))
			}
		}
	}
	refused("anonymous", "/public/x", newBrowser())
	if resp := sendUpgrade(t, newBrowser(), e.broker.URL+"/private", h2c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous h2c upgrade on a protected route: status %d, want 401", resp.StatusCode)
	}
	e.login("alpha", "alice", "/")
	refused("signed in", "/private", e.client)

	for _, up := range []string{"websocket", "WebSocket"} {
		resp := sendUpgrade(t, e.client, e.broker.URL+"/private", http.Header{"Upgrade": {up}, "Connection": {"keep-alive, Upgrade"}})
		if resp.StatusCode != http.StatusSwitchingProtocols || app.lastHeader().Get("Upgrade") != up {
			t.Errorf("Upgrade %q: status %d, the app received Upgrade %q; want 101 and %[1]q", up, resp.StatusCode, app.lastHeader().Get("Upgrade"))
		}
	}
}

// TestProxyRefusesOtherProtocolSwitches: an upstream whose 101 switches to
// anything but the WebSocket the request asked for (h2c in answer to a
// WebSocket handshake, or any 101 to a plain request, with or without
// Upgrade and Connection) gets the client a 502, never the switched
// connection.
func TestProxyRefusesOtherProtocolSwitches(t *testing.T) {
	ws := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
	for _, c := range []struct {
		answer string
		hdr    http.Header
	}{
		{"Connection: Upgrade\r\nUpgrade: h2c\r\n", ws},
		{"Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n", ws},
		{"Upgrade: websocket\r\n", ws},
		{"Connection: Upgrade\r\nUpgrade: websocket\r\n", nil},
		{"Connection: Upgrade\r\nUpgrade: h2c\r\n", nil},
		{"Upgrade: h2c\r\n", nil},
		{"Connection: Upgrade\r\n", nil},
		{"X-Nothing: 1\r\n", nil},
	} {
		app := newSwitchingApp(t, c.answer)
		e := newEnv(t, withConfig(func(cfg *Config) {
			cfg.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}}
			cfg.Default = AccessRule{Public: true}
		}))
		resp := sendUpgrade(t, newBrowser(), e.broker.URL+"/x", c.hdr)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("upstream answering 101 with %q to Upgrade %q: status %d, want 502", c.answer, c.hdr.Get("Upgrade"), resp.StatusCode)
		}
	}
}

// TestRelayedHeadersSurviveConnection: a client's Connection header names
// hop-by-hop headers, which a proxy removes; naming the identity headers,
// the assertion, the forwarding headers or the request ID must not remove
// what the broker relays (an app that denies by group would otherwise
// grant more).
func TestRelayedHeadersSurviveConnection(t *testing.T) {
	app := echoApp(t, "app")
	e := newEnv(t, withAssertion(nil), withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}} }))
	e.login("alpha", "alice", "/")
	relayed := []string{HeaderUser, HeaderProvider, HeaderEmail, HeaderPreferredUsername, HeaderGroups, "X-Auth-Request-Assertion",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Request-Id"}
	for _, conn := range []string{strings.Join(relayed, ", "), "X-Auth-Request-Groups, X-Auth-Request-Assertion", "x-auth-request-groups"} {
		status, v := e.echo("", "/x", http.Header{"Connection": {conn}})
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		for _, name := range relayed {
			if v.Header.Get(name) == "" {
				t.Errorf("with Connection: %s the app did not receive %s", conn, name)
			}
		}
		if got := v.Header.Get(HeaderGroups); got != "admins,engineering" {
			t.Errorf("with Connection: %s the app received groups %q", conn, got)
		}
	}
}

// TestClientClaimHeadersNeverReachTheApp: headers in which a client claims
// an address, a scheme, a URL or an identity that apps read (X-Real-IP and
// kin, oauth2-proxy's X-Forwarded-User and kin, X-Original-URL) are removed
// in any case and spelling, and the forwarding headers the app receives
// are the broker's only, also against underscore spellings that WSGI
// servers merge with the real header.
func TestClientClaimHeadersNeverReachTheApp(t *testing.T) {
	app := echoApp(t, "app")
	e := newEnv(t, withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}}
		c.Routes = []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}}
	}))
	claims := http.Header{}
	for _, name := range []string{
		"X-Real-Ip", "x-real-ip", "X_Real_IP", "True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X-Cluster-Client-IP",
		"Fastly-Client-IP", "X-Original-Forwarded-For", "X-Forwarded", "Forwarded-For", "X-Originating-IP", "X-Remote-IP",
		"X-Remote-Addr", "X-ProxyUser-Ip", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Url-Scheme", "Front-End-Https",
		"X-Original-URL", "X-Rewrite-URL", "X-Forwarded-User", "X_Forwarded_User", "X-Forwarded-Email",
		"X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Forwarded-Access-Token", "GAP-Auth", "Remote-User",
		"Remote_User", "X-Remote-User", "X-WEBAUTH-USER",
		"X_Forwarded_For", "X_Forwarded_Host", "X_Forwarded_Proto", "X_Forwarded_Port", "X_Forwarded_Prefix",
		"X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-Uri", "X-Original-Method", "X_Original_URI",
	} {
		claims[name] = []string{"evil"}
	}
	claims["Forwarded"] = []string{"for=6.6.6.6;host=evil.example;proto=https"}
	check := func(who string) {
		status, v := e.echo("", "/public/x", claims)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", who, status)
		}
		for name, values := range v.Header {
			for _, val := range values {
				if strings.Contains(val, "evil") {
					t.Errorf("%s: the app received %s: %q", who, name, val)
				}
			}
		}
		for name, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http",
			"X-Forwarded-Host": strings.TrimPrefix(e.broker.URL, "http://")} {
			if got := strings.Join(v.Header.Values(name), "|"); got != want {
				t.Errorf("%s: the app received %s %q, want %q", who, name, got, want)
			}
		}
	}
	check("anonymous")
	e.login("alpha", "alice", "/")
	check("signed in")
}
