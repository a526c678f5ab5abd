//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalConfig is a configuration for the signal tests: a local provider
// (alice, in staff), more providers and top-level YAML as given.
func signalConfig(t *testing.T, path, htpasswd, top, moreProviders string) {
	t.Helper()
	conf := fmt.Sprintf(`listen: 127.0.0.1:0
%s
providers:
  - id: local
    name: Local account
    type: local
    htpasswd_file: %q
    groups:
      staff: [alice]
%s`, top, htpasswd, moreProviders)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits (bounded) until the broker's log has n lines containing s.
func waitLog(t *testing.T, b *demoBroker, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(b.stderr.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 10 s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGHUP reloads providers and rules from the file without ending
// sessions; a broken file is refused with its problems logged, and the
// running configuration stays.
func TestSIGHUPReloadsTheConfiguration(t *testing.T) {
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice", "wonderland")
	path := filepath.Join(dir, "broker.yaml")
	signalConfig(t, path, htpasswd, "", "")
	b, addr := startServe(t, path)
	base := "http://" + addr.String()
	cookie := signInLocal(t, base, "alice", "wonderland")
	c := &http.Client{Timeout: 10 * time.Second}
	auth := func() int {
		resp, _ := fetch(t, c, http.MethodGet, base+"/oauth2/auth", nil, http.Header{"Cookie": {cookie}})
		return resp.StatusCode
	}
	if got := auth(); got != http.StatusAccepted {
		t.Fatalf("before the reload: forward-auth %d, want 202", got)
	}

	// A new provider and a default rule alice does not meet.
	signalConfig(t, path, htpasswd, "default:\n  groups:\n    one_of: [finance]\n", `  - id: corp
    name: Corp SSO
    issuer: http://127.0.0.1:9/realms/corp
    client_id: broker
    client_secret: corp-secret-that-must-not-be-logged
`)
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, `msg="configuration reloaded" providers=2`, 1)
	if _, page := fetch(t, c, http.MethodGet, base+"/oauth2/sign_in", nil, nil); !strings.Contains(page, "Corp SSO") {
		t.Error("the sign-in page does not list the provider added by the reload")
	}
	if got := auth(); got != http.StatusForbidden {
		t.Errorf("after the reload: forward-auth %d, want 403 (signed in, but not in finance)", got)
	}
	if resp, _ := fetch(t, c, http.MethodGet, base+"/oauth2/userinfo", nil, http.Header{"Cookie": {cookie}}); resp.StatusCode != http.StatusOK {
		t.Errorf("the session did not survive the reload: userinfo %d", resp.StatusCode)
	}

	// A broken file: refused, every problem logged, the old configuration kept.
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:0\nsession:\n  lifetime: 1d\nproviders:\n  - id: local\n    type: saml\n    bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, "configuration reload refused; the running configuration stays", 1)
	waitLog(t, b, `msg="configuration problem"`, 5) // the lines after it
	logs := b.stderr.String()
	for _, want := range []string{`problems=5`, `line=3 problem="session.lifetime: \"1d\" is not a duration`,
		`line=7 problem="providers[0].bogus: unknown key`, `line=6 problem="providers[0].type: \"saml\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, logs)
		}
	}
	if _, page := fetch(t, c, http.MethodGet, base+"/oauth2/sign_in", nil, nil); !strings.Contains(page, "Corp SSO") {
		t.Error("a refused reload changed the running providers")
	}
	if got := auth(); got != http.StatusForbidden {
		t.Errorf("after the refused reload: forward-auth %d, want 403 as before", got)
	}
	if strings.Contains(logs, "corp-secret-that-must-not-be-logged") {
		t.Error("a client secret reached the log")
	}
}

// SIGTERM stops taking connections and lets a request in flight finish.
func TestSIGTERMDrainsRequestsInFlight(t *testing.T) {
	arrived := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(time.Second)
		_, _ = io.WriteString(w, "finished")
	}))
	t.Cleanup(app.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.yaml")
	signalConfig(t, path, writeHtpasswd(t, dir, "alice", "wonderland"),
		fmt.Sprintf("upstream: %s\ndefault:\n  public: true\n", app.URL), "")
	b, addr := startServe(t, path)
	base := "http://" + addr.String()

	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the app")
	}
	// A connection that never sends a byte (a preconnect, a client that
	// gave up dialing) does not hold the exit back: net/http alone would
	// wait until it is five seconds old.
	silent, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, "shutting down: finishing requests in flight", 1)
	// The listener closes right after that line: new connections are
	// refused from then on (polled, bounded, as the line comes first).
	refused := false
	for range 50 {
		c := &http.Client{Timeout: 3 * time.Second}
		if resp, err := c.Get(base + "/healthz"); err != nil {
			refused = true
			break
		} else {
			resp.Body.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !refused {
		t.Error("new connections were still accepted a second after SIGTERM")
	}
	select {
	case got := <-done:
		if got != "200 finished" {
			t.Errorf("the request in flight got %q, want 200 finished", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the request in flight never finished")
	}
	select {
	case <-b.exited:
		if b.waitErr != nil {
			t.Errorf("exit after draining: %v", b.waitErr)
		}
	case <-time.After(3 * time.Second):
		// Ask the Go runtime for its goroutines (SIGQUIT dumps them to
		// stderr and exits), so that the output below shows what held the
		// shutdown.
		_ = b.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
		}
		t.Fatal("the broker did not exit within 3 s of draining (a silent connection held it?); its goroutines are in its stderr below")
	}
	// The harness's own stop at cleanup would report the exit as a failure.
	b.reported = true
}
