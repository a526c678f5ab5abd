//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// caddyTimeout bounds Caddy's start until its TLS port accepts connections.
const caddyTimeout = 10 * time.Second

// caddyData holds the fields of e2e/testdata/Caddyfile.tmpl (see docs/integrations.md).
type caddyData struct {
	HTTPPort, ListenPort int // Caddy's plain HTTP port (unused, but never 80) and TLS port
	UpstreamPort         int // the broker
	AppPort              int
}

// TestForwardAuthCaddy runs the app behind real Caddy (Debian's package) terminating TLS
// with forward_auth to the real broker, with the Caddyfile docs/integrations.md quotes.
func TestForwardAuthCaddy(t *testing.T) {
	t.Parallel()
	caddy := findCaddy(t)
	tmplPath := filepath.Join("testdata", "Caddyfile.tmpl")
	const trusted = "{x_for: 1, x_proto: 1, x_host: 1, from: [127.0.0.1]}"
	checkDocumentedTrust(t, tmplPath, trusted)
	dir := t.TempDir()
	ports := freePorts(t, 2)
	origin := fmt.Sprintf("https://127.0.0.1:%d", ports[1])

	idp := startRecordingIdP(t, origin+"/oauth2/callback/acme")
	app := startRecordingApp(t)
	// At log level info, as deployed: forward-auth's 202s for a signed-in
	// session are answered by quickAuth (the debug request log, which the
	// other proxies' tests keep, sends every check through entry's whole
	// path).
	conf := writeServeConfig(t, dir, trusted, idp.URL, "")
	infoLevel(t, conf)
	_, brokerAddr := startServe(t, conf)
	pool := startCaddy(t, caddy, tmplPath, dir, caddyData{
		HTTPPort: ports[0], ListenPort: ports[1], UpstreamPort: brokerAddr.Port, AppPort: app.port(t)})

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(tr.CloseIdleConnections)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	testForwardAuth(t, client, origin, idp, app, forwardAuthSetup{via: "caddy",
		copied: []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Name"}})

	// A page's own fetch('/oauth2/auth') through Caddy would come from Caddy's
	// trusted address, and a forward-auth answer can carry the user's tokens:
	// the documented Caddyfile keeps that endpoint for forward_auth alone.
	resp, err := client.Get(origin + "/oauth2/auth")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Auth-Request-User") != "" {
		t.Errorf("GET /oauth2/auth through Caddy: %d, user %q; want 404 and nothing", resp.StatusCode, resp.Header.Get("X-Auth-Request-User"))
	}
}

// findCaddy returns the path of caddy, or fails the test: the end-to-end suite needs the
// real proxy and never skips for the lack of one.
func findCaddy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatal("caddy is not installed: run ./scripts/test, which installs Debian's caddy package")
	}
	return p
}

// startCaddy renders the template at tmplPath with data into dir/Caddyfile and runs Caddy in
// the foreground with its storage and configuration under dir, until its TLS port accepts
// connections and its internal CA's root certificate exists. It returns a pool that trusts
// only that root. Caddy is stopped when the test ends; its log is shown if the test failed.
func startCaddy(t *testing.T, exe, tmplPath, dir string, data caddyData) *x509.CertPool {
	t.Helper()
	tmpl, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	if err := tmpl.Execute(&conf, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	dataHome := filepath.Join(dir, "caddy-data")
	cmd := exec.Command(exe, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dataHome, "XDG_CONFIG_HOME="+filepath.Join(dir, "caddy-config"),
		"HOME="+dir)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			if !t.Failed() {
				t.Errorf("caddy exited during the test: %v", waitErr)
			}
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			timer := time.NewTimer(stopTimeout)
			defer timer.Stop()
			select {
			case <-exited:
			case <-timer.C:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
				t.Errorf("caddy still ran %v after SIGTERM; killed it", stopTimeout)
			}
		}
		if t.Failed() {
			t.Logf("caddy log:\n%s\nCaddyfile:\n%s", logs.String(), conf.String())
		}
	})

	root := filepath.Join(dataHome, "caddy", "pki", "authorities", "local", "root.crt")
	addr := fmt.Sprintf("127.0.0.1:%d", data.ListenPort)
	deadline := time.Now().Add(caddyTimeout)
	for {
		if pem, err := os.ReadFile(root); err == nil {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					t.Fatalf("caddy's root certificate %s: no certificate", root)
				}
				return pool
			}
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited before listening on %s: %v", addr, waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s with a root certificate within %v", addr, caddyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoLevel sets the log level of the configuration at path (written by
// writeServeConfig at debug) to info.
func infoLevel(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info := strings.Replace(string(b), "\n  level: debug\n", "\n  level: info\n", 1)
	if info == string(b) {
		t.Fatalf("no debug log level in %s", path)
	}
	if err := os.WriteFile(path, []byte(info), 0o600); err != nil {
		t.Fatal(err)
	}
}
