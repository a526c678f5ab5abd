package ldap

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/ldapserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// ownDirectory is a directory of the test's own, with alice.
func ownDirectory(t *testing.T) *ldapserver.Server {
	t.Helper()
	d := ldapserver.Start(t)
	if err := d.Add(`dn: uid=alice,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-pw`); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls cond for at most 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLDAPDirectoryDownAndBack: a sign-in while the directory is stopped
// is an *UnavailableError, and the provider reports itself unavailable
// (and sends nobody to its form) until a check finds the directory again,
// without reopening the provider; a sign-in right after the directory
// restarted succeeds although the pooled connection died with it.
func TestLDAPDirectoryDownAndBack(t *testing.T) {
	d := ownDirectory(t)
	logs := &logBuffer{}
	// The clock stands still until the test moves it past the back-off, so
	// that a slow machine does not end the back-off early.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	opened, err := testTypes.Open(ldapConfig(d), providers.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	p := opened.(*provider)
	if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}

	// The idle connection dies with the server; the next sign-in retries on
	// a new one.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
		t.Fatalf("the first sign-in after a restart: %v", err)
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = p.Authenticate(t.Context(), "alice", "alice-pw")
	var unavailable *providers.UnavailableError
	if !errors.As(err, &unavailable) || unavailable.Provider != "corp" {
		t.Fatalf("with the directory stopped: %v, want an *UnavailableError", err)
	}
	if st := p.Status(); st.Available || !strings.Contains(st.Reason, "directory unreachable") {
		t.Errorf("status with the directory stopped: %+v", st)
	}
	if _, err := p.AuthCodeURL(t.Context(), providers.AuthRequest{State: "s", RedirectURI: "https://b.example/oauth2/callback/corp", FormURL: "https://b.example/oauth2/local/corp"}); !errors.As(err, &unavailable) {
		t.Errorf("AuthCodeURL while down: %v, want an *UnavailableError", err)
	}
	if k := providers.KnownReachability(p); k != providers.ReachFailed {
		t.Errorf("reachability while down: %v", k)
	}
	if !strings.Contains(logs.String(), "the directory is unusable") {
		t.Errorf("the outage is not logged:\n%s", logs)
	}

	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(time.Minute)) // past the back-off: the page's next look checks the directory
	waitFor(t, "the provider available again", func() bool { return p.Status().Available })
	if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
		t.Fatalf("after the directory came back: %v", err)
	}
	if k := providers.KnownReachability(p); k != providers.ReachOK {
		t.Errorf("reachability after a sign-in: %v", k)
	}
	if !strings.Contains(logs.String(), "the directory answers again") {
		t.Errorf("the recovery is not logged:\n%s", logs)
	}
}

// TestLDAPFormAfterTheBackoff: once the back-off after a failure has
// passed, /oauth2/start checks the directory before it shows the form: a
// directory still down is refused, one that is back shows it.
func TestLDAPFormAfterTheBackoff(t *testing.T) {
	d := ownDirectory(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	cfg := ldapConfig(d)
	opened, err := testTypes.Open(cfg, providers.Options{Logger: quiet, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	p := opened.(*provider)
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	var unavailable *providers.UnavailableError
	if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); !errors.As(err, &unavailable) {
		t.Fatalf("with the directory stopped: %v", err)
	}
	clock.Add(int64(time.Hour)) // far past the back-off
	req := providers.AuthRequest{State: "s", RedirectURI: "https://b.example/oauth2/callback/corp", FormURL: "https://b.example/oauth2/local/corp"}
	if u, err := p.AuthCodeURL(t.Context(), req); !errors.As(err, &unavailable) {
		t.Fatalf("AuthCodeURL after the back-off, directory still down: %q, %v; want an *UnavailableError", u, err)
	}
	clock.Add(int64(time.Hour))
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if u, err := p.AuthCodeURL(t.Context(), req); err != nil || !strings.HasPrefix(u, "https://b.example/oauth2/local/corp?") {
		t.Fatalf("AuthCodeURL with the directory back: %q, %v", u, err)
	}
	if st := p.Status(); !st.Available {
		t.Errorf("status after the check found the directory: %+v", st)
	}
}

// TestLDAPHangingDirectory: a directory that accepts connections but
// never answers costs the timeouts, then the provider is unavailable:
// whether it hangs in the bind (plain LDAP), in StartTLS or in the LDAPS
// handshake.
func TestLDAPHangingDirectory(t *testing.T) {
	d := ownDirectory(t)
	if err := d.Pause(); err != nil {
		t.Fatal(err)
	}
	defer d.Resume()
	for _, tc := range []struct {
		name string
		edit func(*providers.LDAPConfig)
	}{
		{"plain LDAP", func(l *providers.LDAPConfig) { l.URLs, l.CAFile = []string{d.URL}, "" }},
		{"StartTLS", func(l *providers.LDAPConfig) { l.URLs, l.StartTLS = []string{d.URL}, true }},
		{"LDAPS", func(*providers.LDAPConfig) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openLDAPProvider(t, ldapConfig(d, tc.edit, func(l *providers.LDAPConfig) {
				l.DialTimeout, l.Timeout = 300*time.Millisecond, 300*time.Millisecond
			}), nil)
			done := make(chan error, 1)
			go func() {
				_, err := p.Authenticate(t.Context(), "alice", "alice-pw")
				done <- err
			}()
			select {
			case err := <-done:
				var unavailable *providers.UnavailableError
				if !errors.As(err, &unavailable) {
					t.Errorf("err = %v, want an *UnavailableError", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("a hanging directory held the sign-in beyond every timeout")
			}
			if p.Status().Available {
				t.Error("a hanging directory left the provider available")
			}
		})
	}
}

// TestLDAPConnectionRefusals: a certificate from another CA, a name the
// certificate does not carry, and a refused service account each make the
// provider unavailable; the service account's password is not logged.
func TestLDAPConnectionRefusals(t *testing.T) {
	d := sharedDirectory(t)
	otherCA, err := ldapserver.WriteOtherCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, log string
		edit      func(*providers.LDAPConfig)
	}{
		{"another CA", "certificate signed by unknown authority", func(l *providers.LDAPConfig) { l.CAFile = otherCA }},
		{"StartTLS, another CA", "certificate signed by unknown authority", func(l *providers.LDAPConfig) {
			l.URLs, l.StartTLS, l.CAFile = []string{d.URL}, true, otherCA
		}},
		{"the wrong server name", "not wrong.example.org", func(l *providers.LDAPConfig) { l.ServerName = "wrong.example.org" }},
		{"system roots", "certificate signed by unknown authority", func(l *providers.LDAPConfig) { l.CAFile = "" }},
		{"the service account refused", "the service account's bind failed: LDAP result 49 (Invalid Credentials)",
			func(l *providers.LDAPConfig) { l.BindPassword = "wrong-service-password" }},
		{"nothing listens", "connection refused", func(l *providers.LDAPConfig) { l.URLs = []string{"ldaps://127.0.0.1:1"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			p := openLDAPProvider(t, ldapConfig(d, tc.edit), logs)
			_, err := p.Authenticate(t.Context(), "alice", "alice-pw")
			var unavailable *providers.UnavailableError
			if !errors.As(err, &unavailable) {
				t.Fatalf("err = %v, want an *UnavailableError", err)
			}
			if p.Status().Available {
				t.Error("the provider is still available")
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, logs)
			}
			for _, secret := range []string{"wrong-service-password", d.ServicePassword, "alice-pw"} {
				if strings.Contains(logs.String(), secret) || strings.Contains(err.Error(), secret) {
					t.Errorf("a password reached the log or the error:\n%s\n%v", logs, err)
				}
			}
		})
	}
}

// countingProxy forwards TCP connections to target and counts them: how
// many were opened, and the most open at once.
type countingProxy struct {
	addr                  string
	opened, open, maxOpen atomic.Int32
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp := &countingProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cp.opened.Add(1)
			n := cp.open.Add(1)
			for m := cp.maxOpen.Load(); n > m && !cp.maxOpen.CompareAndSwap(m, n); m = cp.maxOpen.Load() {
			}
			wg.Go(func() {
				defer cp.open.Add(-1)
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			})
		}
	})
	return cp
}

// TestLDAPPoolBounds: sign-ins one after another reuse one connection;
// twenty at once open no more than max_connections.
func TestLDAPPoolBounds(t *testing.T) {
	d := sharedDirectory(t)
	proxy := newCountingProxy(t, strings.TrimPrefix(d.URL, "ldap://"))
	p := openLDAPProvider(t, ldapConfig(d, func(l *providers.LDAPConfig) {
		l.URLs, l.CAFile, l.MaxConnections = []string{"ldap://" + proxy.addr}, "", 2
	}), nil)
	t.Cleanup(p.pool.flushIdle) // before the proxy waits for its connections to end
	for range 5 {
		if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
			t.Fatal(err)
		}
	}
	if n := proxy.opened.Load(); n != 1 {
		t.Errorf("five sign-ins in a row opened %d connections, want 1", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a parallel sign-in failed: %v", err)
	}
	if n := proxy.maxOpen.Load(); n > 2 {
		t.Errorf("%d connections were open at once, want at most max_connections 2", n)
	}
}
