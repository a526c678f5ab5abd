//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
)

// The server section of TestServerTimeouts: every timeout at its minimum,
// one second, so that the test waits a little past it.
const (
	testTimeout = time.Second
	// pastTimeouts is how long the test idles to outlast every timeout.
	pastTimeouts = 2500 * time.Millisecond
	// cutWithin bounds the wait for a connection the server must close:
	// five times the timeout (the default header timeout, 10 s, would not
	// do), and no measure of speed.
	cutWithin = 5 * testTimeout
)

// TestServerTimeouts runs "oidc-broker serve" with server: {read_header_timeout: 1s,
// read_timeout: 1s, idle_timeout: 1s} in reverse-proxy mode. A client that never finishes
// its header, one that announces a body and never sends it (to routes that read the body
// and to routes that do not), and an idle keep-alive connection are closed by the server;
// a WebSocket through the broker, a slow response, a streamed one and a slow response to a
// request with a body all outlast the timeouts; an upload slower than read_timeout is cut
// (the trade-off docs/config.md describes).
func TestServerTimeouts(t *testing.T) {
	testServerTimeouts(t, brokerBinary, "server:\n  read_header_timeout: 1s\n  read_timeout: 1s\n  idle_timeout: 1s\n")
}

// testServerTimeouts is TestServerTimeouts with the broker binary bin and
// the configuration's server section (to try another build).
func testServerTimeouts(t *testing.T, bin, server string) {
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp := startRecordingIdP(t, public+"/oauth2/callback/acme")
	ws := httptest.NewServer(wsecho.Handler())
	t.Cleanup(ws.Close)
	app := startSlowApp(t)

	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
%supstreams:
  - {path: /, url: %q}
  - {path: /ws/, url: %q}
providers:
  - {id: acme, name: Acme, issuer: %q, client_id: %q, client_secret: %q}
`, port, server, app.URL, ws.URL, idp.URL, idpClientID, idpClientSecret)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startServeWith(t, bin, path)

	t.Run("a header never finished", func(t *testing.T) {
		t.Parallel()
		conn := dialBroker(t, addr.String())
		writeRaw(t, conn, "GET /healthz HTTP/1.1\r\nHost: "+addr.String()+"\r\nUser-Agent: slow\r\n")
		if _, err := readUntilClosed(conn, conn); err != nil {
			t.Fatalf("the connection was not closed: %v", err)
		}
	})
	for _, target := range []string{"/oauth2/sign_out", "/oauth2/backchannel_logout/acme", "/oauth2/auth", "/app/upload"} {
		t.Run("a body never sent to "+target, func(t *testing.T) {
			t.Parallel()
			conn := dialBroker(t, addr.String())
			writeRaw(t, conn, "POST "+target+" HTTP/1.1\r\nHost: "+addr.String()+
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf=")
			got, err := readUntilClosed(conn, conn)
			if err != nil {
				t.Fatalf("the connection was not closed: %v (read %q)", err, firstLine(got))
			}
			t.Logf("answer before the close: %q", firstLine(got))
		})
	}
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		t.Parallel()
		conn := dialBroker(t, addr.String())
		writeRaw(t, conn, "GET /healthz HTTP/1.1\r\nHost: "+addr.String()+"\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if _, err := readUntilClosed(conn, br); err != nil {
			t.Fatalf("the idle connection was not closed: %v", err)
		}
	})

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signInThrough(t, client, public, idp, "alice", "/")

	t.Run("a WebSocket outlasts every timeout", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		conn, _, err := wsecho.Dial(ctx, nil, jar, public+"/ws/chat", http.Header{"Origin": {public}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Hello(); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			time.Sleep(pastTimeouts)
			msg := fmt.Sprintf("still open after %v", time.Duration(i+1)*pastTimeouts)
			if err := conn.WriteText(msg); err != nil {
				t.Fatalf("write: %v", err)
			}
			if got, err := conn.ReadText(); err != nil || got != msg {
				t.Fatalf("echo: %q, %v", got, err)
			}
		}
	})
	for _, c := range []struct{ name, method, path, want string }{
		{"a slow response", http.MethodGet, "/app/slow", "slow done"},
		{"a streamed response", http.MethodGet, "/app/stream", "first\nsecond\n"},
		{"a slow response to a request with a body", http.MethodPost, "/app/slow", "slow done"},
	} {
		t.Run(c.name+" outlasts the timeouts", func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if c.method == http.MethodPost {
				body = strings.NewReader("x=1")
			}
			req, _ := http.NewRequestWithContext(t.Context(), c.method, public+c.path, body)
			req.Header.Set("Accept", "text/html")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || string(got) != c.want {
				t.Fatalf("status %d, body %q, %v; want 200 %q", resp.StatusCode, got, err, c.want)
			}
		})
	}
	t.Run("an upload slower than read_timeout is cut", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, public+"/app/upload", &trickle{n: 15, every: 200 * time.Millisecond})
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("an upload of %v went through read_timeout %v", 15*200*time.Millisecond, testTimeout)
			}
		}
		n, done := app.upload(cutWithin)
		switch {
		case !done:
			t.Fatal("the upload did not reach the app, or the app is still reading it")
		case n == 15:
			t.Fatalf("the app received the whole upload (%d bytes)", n)
		}
	})
}

// slowApp is the upstream of TestServerTimeouts.
type slowApp struct {
	*httptest.Server
	uploads chan int // the bytes of each upload the app finished reading, when it did
}

func startSlowApp(t *testing.T) *slowApp {
	t.Helper()
	a := &slowApp{uploads: make(chan int, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/app/slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(pastTimeouts)
		_, _ = io.WriteString(w, "slow done")
	})
	mux.HandleFunc("/app/stream", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		_ = http.NewResponseController(w).Flush()
		time.Sleep(pastTimeouts)
		_, _ = io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/app/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body) // to its end, or to the broker's cut
		a.uploads <- int(n)
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// upload waits up to d for the app to finish reading an upload and
// returns how many bytes it read; false when it did not finish in time.
func (a *slowApp) upload(d time.Duration) (int, bool) {
	select {
	case n := <-a.uploads:
		return n, true
	case <-time.After(d):
		return 0, false
	}
}

// trickle is a body of n bytes, one every so often.
type trickle struct {
	n     int
	every time.Duration
}

func (b *trickle) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.every)
	b.n--
	p[0] = 'x'
	return 1, nil
}

func dialBroker(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func writeRaw(t *testing.T, conn net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(conn, s); err != nil {
		t.Fatal(err)
	}
}

// readUntilClosed reads what the server sends on conn (through r, which
// may buffer it) until it closes the connection, and fails when that takes
// longer than cutWithin.
func readUntilClosed(conn net.Conn, r io.Reader) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(cutWithin))
	b, err := io.ReadAll(r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(b), fmt.Errorf("still open after %v", cutWithin)
	}
	return string(b), nil // EOF, or a reset: closed either way
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
