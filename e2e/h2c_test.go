//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
)

// h2cUpgrade is what a client sends to switch a connection to HTTP/2 in cleartext (RFC 7540
// section 3.2): the settings are an empty SETTINGS payload's base64url.
var h2cUpgrade = http.Header{
	"Connection":     {"Upgrade, HTTP2-Settings"},
	"Upgrade":        {"h2c"},
	"Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"},
}

// h2cDisguises are Upgrade headers that offer h2c beside or behind a WebSocket: a proxy that
// judges one Upgrade line (or any) and forwards another lets h2c through. Hypercorn switches
// on the last Upgrade line that reaches it; Caddy's and Traefik's proxies forward only the
// first. firstIsWebSocket marks the one a proxy may pass on as the WebSocket handshake it
// claims to be (nginx 1.22 does: its $http_upgrade is the first line), which Hypercorn then
// refuses with 400 for want of a key; every other must reach the app as a plain request.
var h2cDisguises = []struct {
	upgrade          []string
	firstIsWebSocket bool
}{
	{[]string{"h2c"}, false},
	{[]string{"h2c", "websocket"}, false},
	{[]string{"websocket", "h2c"}, true},
	{[]string{"WebSocket, h2c"}, false},
}

// asgiSeen is what e2e/testdata/asgi_echo.py answers: the request as the app received it.
type asgiSeen struct {
	HTTPVersion string              `json:"http_version"`
	Path        string              `json:"path"`
	Headers     map[string][]string `json:"headers"` // lower-case names
}

// TestH2CUpgradeThroughBroker: Hypercorn switches to HTTP/2 on "Upgrade: h2c" (checked
// first, so that the test can fail), which through a proxy that passes it gives the client
// HTTP/2 straight to the app, past every access rule. Through "oidc-broker serve" in
// reverse-proxy mode, an anonymous h2c upgrade on a public route reaches the app as a plain
// HTTP/1.1 request without Upgrade or HTTP2-Settings, one on a protected route gets 401, and
// a signed-in user's is a plain request too, whose identity headers survive a Connection
// header that names them; so is each of [h2cDisguises] (h2c beside a websocket, on one line
// or two, in either order). The same user's WebSocket passes to Hypercorn and echoes.
func TestH2CUpgradeThroughBroker(t *testing.T) {
	t.Parallel()
	hc := startHypercorn(t)
	if status, _ := sendH2C(t, hc, nil, "/sanity", nil); status != http.StatusSwitchingProtocols {
		t.Fatalf("Hypercorn itself answered an h2c upgrade with %d, want 101: the test proves nothing", status)
	}

	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp := startRecordingIdP(t, public+"/oauth2/callback/acme")
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
upstream: "http://%s"
routes:
  - {path: /public/, public: true}
providers:
  - {id: acme, name: Acme, issuer: %q, client_id: %q, client_secret: %q, scopes: [openid, email, profile, groups]}
`, port, hc, idp.URL, idpClientID, idpClientSecret)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startServe(t, path)
	broker := addr.String()

	checkPlain := func(who, path string, status int, seen asgiSeen) {
		t.Helper()
		if status != http.StatusOK {
			t.Fatalf("%s h2c upgrade of %s: status %d, want 200 (a plain request)", who, path, status)
		}
		if seen.HTTPVersion != "1.1" || seen.Path != path {
			t.Errorf("%s h2c upgrade of %s: the app received HTTP/%s %s, want HTTP/1.1", who, path, seen.HTTPVersion, seen.Path)
		}
		for _, name := range []string{"upgrade", "http2-settings"} {
			if v, ok := seen.Headers[name]; ok {
				t.Errorf("%s h2c upgrade of %s: the app received %s %q", who, path, name, v)
			}
		}
		if c := strings.ToLower(strings.Join(seen.Headers["connection"], ",")); strings.Contains(c, "upgrade") {
			t.Errorf("%s h2c upgrade of %s: the app received Connection %q", who, path, c)
		}
	}
	for _, d := range h2cDisguises {
		who := fmt.Sprintf("anonymous (Upgrade %q)", d.upgrade)
		status, seen := sendH2C(t, broker, nil, "/public/x", http.Header{"Upgrade": d.upgrade})
		checkPlain(who, "/public/x", status, seen)
		if status, _ := sendH2C(t, broker, nil, "/private", http.Header{"Upgrade": d.upgrade}); status != http.StatusUnauthorized {
			t.Errorf("%s h2c upgrade of a protected route: status %d, want 401", who, status)
		}
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signInThrough(t, client, public, idp, "alice", "/")
	u, _ := url.Parse(public)
	for _, d := range h2cDisguises {
		hdr := http.Header{"Connection": {"Upgrade, HTTP2-Settings, X-Auth-Request-Groups, X-Auth-Request-User"}, "Upgrade": d.upgrade}
		status, seen := sendH2C(t, broker, nil, "/private", withCookies(hdr, jar.Cookies(u)))
		checkPlain(fmt.Sprintf("signed-in (Upgrade %q)", d.upgrade), "/private", status, seen)
		for name, want := range map[string]string{"x-auth-request-user": "acme:acme-alice", "x-auth-request-groups": "admins,engineering"} {
			if got := strings.Join(seen.Headers[name], ","); got != want {
				t.Errorf("with Connection naming it, the app received %s %q, want %q", name, got, want)
			}
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	checkWebSocket(t, ctx, nil, jar, public+"/private/ws", "acme:acme-alice")
}

// TestH2CUpgradeThroughDocumentedProxies runs Hypercorn behind real nginx and real Caddy with
// the forward-auth configurations that docs/integrations.md quotes: a signed-in user's h2c
// upgrade reaches the app as a plain HTTP/1.1 request without Upgrade or HTTP2-Settings (the
// proxies' WebSocket-only rules), an anonymous one never switches, and a WebSocket passes.
// [h2cDisguises] hide h2c beside a websocket: with "h2c" then "websocket" the Caddyfile's
// earlier matcher (header_regexp, true if any line matches) kept both lines and Caddy
// forwarded the first, so Hypercorn answered 101.
func TestH2CUpgradeThroughDocumentedProxies(t *testing.T) {
	t.Parallel()
	hc := startHypercorn(t)
	_, hcPort, _ := net.SplitHostPort(hc)
	var appPort int
	if _, err := fmt.Sscan(hcPort, &appPort); err != nil {
		t.Fatal(err)
	}
	t.Run("nginx", func(t *testing.T) {
		t.Parallel()
		nginx := findNginx(t)
		tmplPath := filepath.Join("testdata", "nginx-auth-request.conf.tmpl")
		const trusted = "{x_for: 1, x_proto: 1, x_host: 1, x_port: 1, from: [127.0.0.1]}"
		checkDocumentedTrust(t, tmplPath, trusted)
		dir := t.TempDir()
		cert := newTestCert(t, dir)
		port := freePorts(t, 1)[0]
		origin := fmt.Sprintf("https://127.0.0.1:%d", port)
		idp := startRecordingIdP(t, origin+"/oauth2/callback/acme")
		_, brokerAddr := startServe(t, writeServeConfig(t, dir, trusted, idp.URL, ""))
		startNginx(t, nginx, tmplPath, nginxData{Dir: dir, ListenPort: port, UpstreamPort: brokerAddr.Port, AppPort: appPort,
			CertFile: cert.CertFile, KeyFile: cert.KeyFile})
		testH2CThroughProxy(t, origin, cert.Pool, idp)
	})
	t.Run("caddy", func(t *testing.T) {
		t.Parallel()
		caddy := findCaddy(t)
		tmplPath := filepath.Join("testdata", "Caddyfile.tmpl")
		const trusted = "{x_for: 1, x_proto: 1, x_host: 1, from: [127.0.0.1]}"
		checkDocumentedTrust(t, tmplPath, trusted)
		dir := t.TempDir()
		ports := freePorts(t, 2)
		origin := fmt.Sprintf("https://127.0.0.1:%d", ports[1])
		idp := startRecordingIdP(t, origin+"/oauth2/callback/acme")
		_, brokerAddr := startServe(t, writeServeConfig(t, dir, trusted, idp.URL, ""))
		pool := startCaddy(t, caddy, tmplPath, dir, caddyData{HTTPPort: ports[0], ListenPort: ports[1],
			UpstreamPort: brokerAddr.Port, AppPort: appPort})
		testH2CThroughProxy(t, origin, pool, idp)
	})
}

// testH2CThroughProxy checks one TLS proxy at origin in front of Hypercorn and the broker.
func testH2CThroughProxy(t *testing.T, origin string, roots *x509.CertPool, idp *recordingIdP) {
	t.Helper()
	tlsConf := &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}} // an upgrade needs HTTP/1.1
	tr := &http.Transport{TLSClientConfig: tlsConf, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(tr.CloseIdleConnections)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	waitHealthy(t, client, origin+"/oauth2/sign_in")
	u, _ := url.Parse(origin)

	for _, d := range h2cDisguises {
		if status, _ := sendH2C(t, u.Host, tlsConf, "/app", http.Header{"Upgrade": d.upgrade}); status == http.StatusSwitchingProtocols || status == http.StatusOK {
			t.Errorf("anonymous h2c upgrade of /app with Upgrade %q: status %d, want a sign-in", d.upgrade, status)
		}
	}
	signInThrough(t, client, origin, idp, "alice", "/")
	for _, d := range h2cDisguises {
		status, seen := sendH2C(t, u.Host, tlsConf, "/app", withCookies(http.Header{"Upgrade": d.upgrade}, jar.Cookies(u)))
		who := fmt.Sprintf("signed-in h2c upgrade of /app with Upgrade %q", d.upgrade)
		switch {
		case status == http.StatusSwitchingProtocols:
			t.Errorf("%s: status 101: the client speaks HTTP/2 to the app past the proxy's forward-auth", who)
			continue
		case status == http.StatusBadRequest && d.firstIsWebSocket:
			t.Logf("%s: status 400 (passed on as a WebSocket handshake, which the app refused)", who)
			continue
		case status != http.StatusOK:
			t.Errorf("%s: status %d, want 200 (a plain request)", who, status)
			continue
		}
		if seen.HTTPVersion != "1.1" {
			t.Errorf("%s: the app received HTTP/%s, want HTTP/1.1", who, seen.HTTPVersion)
		}
		for _, name := range []string{"upgrade", "http2-settings"} {
			if v, ok := seen.Headers[name]; ok {
				t.Errorf("%s: the app received %s %q", who, name, v)
			}
		}
		if got := strings.Join(seen.Headers["x-auth-request-user"], ","); got != "acme:acme-alice" {
			t.Errorf("%s: the app received X-Auth-Request-User %q", who, got)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	checkWebSocket(t, ctx, tr, jar, origin+"/app/ws", "acme:acme-alice")
}

// checkWebSocket opens a WebSocket to Hypercorn at rawURL and checks that its upgrade request
// carried the identity user and that a message echoes.
func checkWebSocket(t *testing.T, ctx context.Context, rt http.RoundTripper, jar http.CookieJar, rawURL, user string) {
	t.Helper()
	conn, _, err := wsecho.Dial(ctx, rt, jar, rawURL, nil)
	if err != nil {
		t.Fatalf("a signed-in WebSocket to %s: %v", rawURL, err)
	}
	defer conn.Close()
	hello, err := conn.Hello()
	if err != nil {
		t.Fatal(err)
	}
	if got := hello.Header.Get("X-Auth-Request-User"); got != user {
		t.Errorf("the WebSocket's upgrade request reached the app with X-Auth-Request-User %q, want %q", got, user)
	}
	if err := conn.WriteText("hello"); err != nil {
		t.Fatal(err)
	}
	if got, err := conn.ReadText(); err != nil || got != "hello" {
		t.Errorf("WebSocket echo: %q, %v", got, err)
	}
}

// withCookies returns a copy of h with a Cookie header holding cookies.
func withCookies(h http.Header, cookies []*http.Cookie) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	var pairs []string
	for _, c := range cookies {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	if len(pairs) > 0 {
		h.Set("Cookie", strings.Join(pairs, "; "))
	}
	return h
}

// sendH2C sends "GET path" with [h2cUpgrade] (and extra, which replaces headers of the same
// name) over a new connection to addr (TLS when tlsConf is set) and returns the answer's
// status and, for a 200, what the ASGI app says it received.
func sendH2C(t *testing.T, addr string, tlsConf *tls.Config, path string, extra http.Header) (int, asgiSeen) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if tlsConf != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	h := h2cUpgrade.Clone()
	for name, v := range extra {
		h[name] = v
	}
	h.Set("Accept", "application/json")
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	if err := h.Write(&req); err != nil {
		t.Fatal(err)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s with an h2c upgrade: %v", path, err)
	}
	defer resp.Body.Close()
	var seen asgiSeen
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
			t.Fatalf("GET %s with an h2c upgrade: the app's answer: %v", path, err)
		}
	}
	return resp.StatusCode, seen
}

// startHypercorn runs e2e/testdata/asgi_echo.py under Hypercorn on a free loopback port until
// the test ends, and returns its address once it accepts connections.
func startHypercorn(t *testing.T) string {
	t.Helper()
	exe, err := exec.LookPath("hypercorn")
	if err != nil {
		t.Fatal("hypercorn is not installed: run ./scripts/test, which installs Debian's python3-hypercorn package")
	}
	app, err := filepath.Abs(filepath.Join("testdata", "asgi_echo.py"))
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	cmd := exec.Command(exe, "--bind", addr, app+":app")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("hypercorn log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("hypercorn exited before listening on %s:\n%s", addr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hypercorn did not listen on %s within %v:\n%s", addr, startTimeout, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
