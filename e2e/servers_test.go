//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// nginxPath is where Debian's nginx package puts the server.
const nginxPath = "/usr/sbin/nginx"

// nginxTimeout bounds `nginx -t`, and nginx's start until its TLS port accepts connections.
const nginxTimeout = 10 * time.Second

// findNginx returns the path of nginx, or fails the test: the end-to-end suite needs the real
// proxy and never skips for the lack of one.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat(nginxPath); err == nil {
		return nginxPath
	}
	t.Fatalf("nginx is not installed (neither nginx on PATH nor %s): run ./scripts/test, which installs it", nginxPath)
	return ""
}

// nginxData holds the fields of the templates under proxyfix/testdata/nginx (see
// docs/proxies.md) and e2e/testdata (see docs/integrations.md).
type nginxData struct {
	Dir                                  string // scratch directory: pid file, logs, temp paths
	ListenPort, MiddlePort, UpstreamPort int    // TLS port for clients, inner hop, broker
	AppPort                              int    // the app behind forward-auth (e2e/testdata)
	CertFile, KeyFile                    string
}

// nginxProcess is a running nginx master process in the foreground, with its workers in
// its own process group.
type nginxProcess struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	exited  chan struct{} // closed when the master has exited; then waitErr is set
	waitErr error
}

// startNginx renders the template at tmplPath with data into data.Dir/nginx.conf, checks it
// with `nginx -t`, runs it, and waits until the TLS port accepts connections. nginx is
// stopped when the test ends; its stderr is logged if the test failed.
func startNginx(t *testing.T, exe, tmplPath string, data nginxData) {
	t.Helper()
	tmpl, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	if err := tmpl.Execute(&conf, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data.Dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", data.Dir, "-c", path, "-e", "stderr"}

	ctx, cancel := context.WithTimeout(t.Context(), nginxTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, exe, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t %s: %v\n%s\n%s", filepath.Base(tmplPath), err, out, conf.String())
	}

	n := &nginxProcess{
		cmd:    exec.Command(exe, append(args, "-g", "daemon off;")...),
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	n.cmd.Stderr = n.stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so that a kill reaches the workers
	n.cmd.WaitDelay = time.Second                           // workers that outlive the master hold stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() { n.stop(t) })

	addr := fmt.Sprintf("127.0.0.1:%d", data.ListenPort)
	deadline := time.Now().Add(nginxTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("nginx exited before listening on %s: %v", addr, n.waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within %v: %v", addr, nginxTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks nginx to finish gracefully (SIGQUIT) and kills its process group after
// [stopTimeout]. An exit before the test ended fails the test.
func (n *nginxProcess) stop(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		if !t.Failed() {
			t.Errorf("nginx exited during the test: %v", n.waitErr)
		}
	default:
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-n.exited:
		case <-timer.C:
			_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.exited
			t.Errorf("nginx still ran %v after SIGQUIT; killed it", stopTimeout)
		}
	}
	if t.Failed() {
		t.Logf("nginx stderr:\n%s", n.stderr.String())
	}
}

// listeningLine matches what "oidc-broker serve" logs once it listens.
var listeningLine = regexp.MustCompile(`msg="oidc-broker listening" addr=(127\.0\.0\.1:\d+)`)

// startServe starts "oidc-broker serve --config config" and waits until it has logged the
// address it listens on. The returned broker's URL is that address over plain HTTP; it is
// stopped when the test ends, and its stderr logged if the test failed (see
// [demoBroker.stop]).
func startServe(t *testing.T, config string) (*demoBroker, *net.TCPAddr) {
	t.Helper()
	return startServeWith(t, brokerBinary, config)
}

// startServeWith is startServe with another build of the broker, bin.
func startServeWith(t *testing.T, bin, config string) (*demoBroker, *net.TCPAddr) {
	t.Helper()
	return startServeCmd(t, exec.Command(bin, "serve", "--config", config))
}

// startServeCmd is startServe with a command prepared by the caller (its
// environment, or run through taskset: e2e/loadpin_test.go).
func startServeCmd(t *testing.T, cmd *exec.Cmd) (*demoBroker, *net.TCPAddr) {
	t.Helper()
	b := &demoBroker{
		cmd:    cmd,
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() { b.stop(t) })

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := listeningLine.FindStringSubmatch(b.stderr.String()); m != nil {
			addr, err := net.ResolveTCPAddr("tcp", m[1])
			if err != nil {
				t.Fatal(err)
			}
			b.URL = "http://" + m[1]
			return b, addr
		}
		select {
		case <-b.exited:
			b.reported = true
			t.Fatalf("oidc-broker serve exited before listening: %v", b.waitErr)
		case <-timer.C:
			t.Fatalf("oidc-broker serve logged no listening address within %v", startTimeout)
		case <-tick.C:
		}
	}
}

// writeServeConfig writes the broker's configuration into dir and returns its path: a free
// loopback port, no public_url (the origin comes from the proxy's headers, as trusted),
// one provider "acme" at issuer, and the upstream app; /admins/ is for the group admins
// (alice, not bob). trusted is YAML in flow style.
func writeServeConfig(t *testing.T, dir, trusted, issuer, upstream string) string {
	t.Helper()
	conf := fmt.Sprintf(`listen: 127.0.0.1:0
trusted_proxies: %s
upstream: %q
log:
  level: debug
routes:
  - path: /admins/
    groups: {one_of: [admins]}
providers:
  - id: acme
    name: Acme
    issuer: %q
    client_id: %q
    client_secret: %q
    scopes: [openid, email, profile, groups]
`, trusted, upstream, issuer, idpClientID, idpClientSecret)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, for servers that must be told
// their port in advance.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all are picked, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
