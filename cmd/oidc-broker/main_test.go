package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	t.Setenv("KC_SECRET", "s3cret-value")
	good := writeConfig(t, `
public_url: http://auth.example.com
trusted_proxies: {x_proto: 1}
providers:
  - id: kc
    issuer: https://kc.example.com/realms/main
    client_id: broker
    client_secret: ${KC_SECRET}
`)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", good}, &out, &errb); code != 0 {
		t.Fatalf("check good: exit %d: %s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"ok (1 providers)", "warning: line 3: trusted_proxies", "warning: line 2: public_url"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), "s3cret-value") {
		t.Error("the secret was printed")
	}

	bad := writeConfig(t, "listen: nope\nproviders:\n  - id: kc\n    issuer: https://kc\n    client_id: c\n    client_secret: x\n    colour: blue\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != 1 {
		t.Fatalf("check bad: exit %d", code)
	}
	for _, want := range []string{"line 1: listen:", "line 7: providers[0].colour: unknown key"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errb.String())
		}
	}
}

func TestServeRefusesBadConfigAtStart(t *testing.T) {
	bad := writeConfig(t, "providers: []\n")
	var errb bytes.Buffer
	if code := run([]string{"serve", "--config", bad}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "at least one provider") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), "oidc-broker ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	var errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", code, errb.String())
	}
}

// TestVersionFlagAgrees: --version and version print the same line, and
// the build-time version wins.
func TestVersionFlagAgrees(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var a, b bytes.Buffer
	if code := run([]string{"--version"}, &a, &bytes.Buffer{}); code != 0 {
		t.Errorf("--version: exit %d", code)
	}
	if code := run([]string{"version"}, &b, &bytes.Buffer{}); code != 0 {
		t.Errorf("version: exit %d", code)
	}
	if a.String() != "oidc-broker v1.2.3\n" || a.String() != b.String() {
		t.Errorf("--version %q, version %q", a.String(), b.String())
	}
}

// TestNoConfigSaysHowToStart: no arguments and no broker.yaml name the
// demo and --config instead of only "no such file or directory".
func TestNoConfigSaysHowToStart(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{nil, {"serve"}, {"check"}, {"--config", "missing.yaml"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		for _, want := range []string{"oidc-broker demo", "oidc-broker --config FILE", "oidc-broker help"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errb.String())
			}
		}
		if strings.Contains(errb.String(), "no such file") {
			t.Errorf("%v: only the hint is wanted:\n%s", args, errb.String())
		}
	}
	var errb bytes.Buffer
	run([]string{"--config", "missing.yaml"}, &bytes.Buffer{}, &errb)
	if !strings.Contains(errb.String(), "missing.yaml does not exist") {
		t.Errorf("an explicit --config is named: %s", errb.String())
	}
}

// TestDemoRefusesRemoteListen: the demo's users and password are public,
// so a non-loopback --listen needs --allow-remote; nothing is bound.
func TestDemoRefusesRemoteListen(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:4180", ":4180", "192.0.2.1:4180", "[::]:4180"} {
		var out, errb bytes.Buffer
		if code := run([]string{"demo", "--listen", addr}, &out, &errb); code != 2 {
			t.Errorf("%s: exit %d, want 2", addr, code)
		}
		if !strings.Contains(errb.String(), "is not a loopback address") || !strings.Contains(errb.String(), "--allow-remote") {
			t.Errorf("%s: %s", addr, errb.String())
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:0": true, "localhost:4180": true, "[::1]:4180": true, "0.0.0.0:1": false, ":1": false, "example.com:1": false} {
		if got := loopbackListen(addr); got != want {
			t.Errorf("loopbackListen(%q) = %v", addr, got)
		}
	}
}

// TestBadFlagsAndArguments: a bad flag or a stray argument exits 2 and
// says where the flags are.
func TestBadFlagsAndArguments(t *testing.T) {
	for _, args := range [][]string{{"check", "--bogus"}, {"serve", "extra"}, {"help", "frobnicate"}} {
		var errb bytes.Buffer
		if code := run(args, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "oidc-broker help") {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
	}
}

// TestDemoSaysWhenItsPortIsTaken: the demo's default port may be in use;
// the error says what to do.
func TestDemoSaysWhenItsPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var errb bytes.Buffer
	if code := run([]string{"demo", "--listen", ln.Addr().String()}, &bytes.Buffer{}, &errb); code != 1 ||
		!strings.Contains(errb.String(), "Another program uses that port") || !strings.Contains(errb.String(), "127.0.0.1:0 for any free port") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// TestServeRefusesRedisCluster: a Redis Cluster node is refused at start,
// with an error that says why (docs/sessions.md#redis-cluster).
func TestServeRefusesRedisCluster(t *testing.T) {
	r := redisserver.StartWith(t, redisserver.Options{Args: []string{"--cluster-enabled", "yes"}})
	cfg := writeConfig(t, "listen: 127.0.0.1:0\nsession:\n  store: redis\n  redis: {address: '"+r.Addr+"'}\n"+
		"providers:\n  - {id: kc, issuer: 'https://kc.example.com', client_id: c, client_secret: s}\n")
	var errb bytes.Buffer
	if code := run([]string{"serve", "--config", cfg}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "Redis Cluster is not supported") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// TestCheckSentinelSettings: check names each wrong sentinel setting.
func TestCheckSentinelSettings(t *testing.T) {
	cfg := writeConfig(t, "session:\n  store: redis\n  redis:\n    address: 'r:6379'\n    sentinel: {addresses: ['s1', 's2:26379'], password: x, password_file: /nonexistent}\n"+
		"    wait: {replicas: -1}\nproviders:\n  - {id: kc, issuer: 'https://kc.example.com', client_id: c, client_secret: s}\n")
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != 1 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"session.redis.address: must not be set with sentinel", `session.redis.sentinel.addresses[0]: "s1" is not host:port`,
		"session.redis.sentinel.master: is required", "session.redis.sentinel.password_file: set password or password_file, not both",
		"session.redis.wait.replicas: must not be negative"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errb.String())
		}
	}
}
