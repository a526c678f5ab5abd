//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// SIGHUP re-reads a local provider's htpasswd file (docs/local-users.md),
// and a reload that removes a provider signs its users out at their next
// request (docs/operations.md#signals), with the real binary.
func TestSIGHUPReloadsLocalUsersAndEndsARemovedProvidersSessions(t *testing.T) {
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice", "wonderland")
	opsDir := t.TempDir()
	ops := `  - id: ops
    type: local
    htpasswd_file: ` + writeHtpasswd(t, opsDir, "olga", "operations") + "\n"
	path := filepath.Join(dir, "broker.yaml")
	signalConfig(t, path, htpasswd, "", ops)
	b, addr := startServe(t, path)
	base := "http://" + addr.String()
	alice := signInLocal(t, base, "alice", "wonderland")
	c := &http.Client{Timeout: 10 * time.Second}
	userinfo := func(cookie string) int {
		resp, _ := fetch(t, c, http.MethodGet, base+"/oauth2/userinfo", nil, http.Header{"Cookie": {cookie}})
		return resp.StatusCode
	}

	// carol added to the htpasswd file: she can sign in after SIGHUP.
	hash, err := bcrypt.GenerateFromPassword([]byte("looking-glass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(htpasswd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("carol:" + string(hash) + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, `msg="configuration reloaded"`, 1)
	carol := signInLocal(t, base, "carol", "looking-glass") // fails the test unless she is known now
	if got := userinfo(carol); got != http.StatusOK {
		t.Errorf("carol after the reload: userinfo %d", got)
	}

	// carol removed from the file: her session lasts its lifetime (as
	// docs/local-users.md says).
	writeHtpasswd(t, dir, "alice", "wonderland")
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, `msg="configuration reloaded"`, 2)
	if got := userinfo(carol); got != http.StatusOK {
		t.Errorf("carol's session after she was removed from the file: userinfo %d, want 200", got)
	}

	// The local provider removed: its sessions end at their next request.
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:0\nproviders:\n"+ops), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, b, `msg="configuration reloaded"`, 3)
	if got := userinfo(alice); got != http.StatusUnauthorized {
		t.Errorf("alice after her provider was removed: userinfo %d, want 401", got)
	}
	if got := userinfo(carol); got != http.StatusUnauthorized {
		t.Errorf("carol after her provider was removed: userinfo %d, want 401", got)
	}
	waitLog(t, b, `msg="session ended"`, 2)
	if logs := b.stderr.String(); !strings.Contains(logs, "its provider was removed from the configuration") {
		t.Errorf("the log does not say why the sessions ended:\n%s", logs)
	}
}
