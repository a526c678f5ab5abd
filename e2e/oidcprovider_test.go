//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeOPDir is the directory of the Node script that runs npm oidc-provider, relative to this
// package; "npm ci" there (./scripts/test does it) installs its node_modules.
const nodeOPDir = "oidcprovider"

// nodeOPConfig is the configuration of one oidc-provider process; see oidcprovider/server.mjs.
type nodeOPConfig struct {
	// CookiePrefix makes its cookie names differ from those of other providers on 127.0.0.1.
	CookiePrefix string `json:"cookie_prefix"`
	// Claims maps extra scopes to the claims they release, such as "groups": ["groups"].
	Claims map[string][]string `json:"claims,omitempty"`
	// TokenEndpointAuthMethods, when set, are the only client authentication methods the
	// token endpoint accepts.
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods,omitempty"`
	// Clients are oidc-provider client metadata.
	Clients []nodeOPClient `json:"clients"`
	// Accounts are the claims of each login name, which oidc-provider makes the sub.
	Accounts map[string]map[string]any `json:"accounts"`
	// BackchannelLogout enables Back-Channel Logout: clients with a backchannel_logout_uri
	// get a logout token when the user signs out at the provider.
	BackchannelLogout bool `json:"backchannel_logout,omitempty"`
	// AccessTokenTTL, in seconds, when set: short-lived access tokens, for refresh tests.
	AccessTokenTTL int `json:"access_token_ttl,omitempty"`
	// RefreshTokens issues refresh tokens to clients allowed the grant, without offline_access.
	RefreshTokens bool `json:"refresh_tokens,omitempty"`
	// EndSessionRequiresIDTokenHint refuses end_session requests without id_token_hint,
	// as ORY Hydra (with state) and Okta do.
	EndSessionRequiresIDTokenHint bool `json:"end_session_requires_id_token_hint,omitempty"`
	// HTTPPostMethods lets end_session (and authorization) take form POSTs; it makes the
	// session cookie SameSite=None, so it needs TLS.
	HTTPPostMethods bool `json:"http_post_methods,omitempty"`
	// TLS, when set, makes it serve HTTPS (issuer https://127.0.0.1:<port>).
	TLS *nodeOPTLS `json:"tls,omitempty"`
	// APIResource, when set, lets clients allowed the client_credentials grant get RFC 9068
	// JWT access tokens for it (see oidcprovider/server.mjs).
	APIResource *nodeOPAPIResource `json:"api_resource,omitempty"`
	// ExitWithStdin makes the process exit when its stdin closes: startNodeOP holds the
	// other end, so the process ends with the test binary even when that is killed.
	ExitWithStdin bool `json:"exit_with_stdin"`
}

// nodeOPAPIResource is a resource server whose tokens clients get with client credentials.
type nodeOPAPIResource struct {
	Audience string `json:"audience"`
	Scope    string `json:"scope"` // space-separated
}

// nodeOPTLS names the PEM files of the provider's certificate and key.
type nodeOPTLS struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// nodeOPClient is the metadata of one client at oidc-provider.
type nodeOPClient struct {
	ClientID                 string   `json:"client_id"`
	ClientSecret             string   `json:"client_secret"`
	RedirectURIs             []string `json:"redirect_uris"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty"`
	// GrantTypes default to authorization_code; refresh_token lets offline_access through.
	GrantTypes []string `json:"grant_types,omitempty"`
	// RP-Initiated and Back-Channel Logout (see interop_test.go).
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
}

// nodeOP is a running oidc-provider: a real, OpenID Certified OpenID Provider.
type nodeOP struct {
	// Issuer is its issuer URL, http://127.0.0.1:<port> (https with TLS).
	Issuer string

	name     string // for messages
	cmd      *exec.Cmd
	stdin    io.Closer // never written; Wait closes it, or the kernel when this binary dies
	stdout   *syncBuffer
	stderr   *syncBuffer
	exited   chan struct{} // closed when the process has exited; then waitErr is set
	waitErr  error
	reported bool // the unclean exit has been reported already
}

// readyLine is what server.mjs prints once it serves.
var readyLine = regexp.MustCompile(`(?m)^READY (https?://127\.0\.0\.1:\d+)$`)

// startNodeOP starts oidc-provider on a free loopback port with the configuration and waits
// until it is ready. It stops the process when the test ends, and logs its output if the
// test failed.
func startNodeOP(t *testing.T, name string, cfg nodeOPConfig) *nodeOP {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed; the interop tests need Node.js 20 or later: %v", err)
	}
	dir, err := filepath.Abs(nodeOPDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		t.Fatalf("oidc-provider is not installed: run (cd e2e/%s && npm ci), or ./scripts/test, which does: %v", nodeOPDir, err)
	}
	cfg.ExitWithStdin = true
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	op := &nodeOP{
		name:   name,
		cmd:    exec.Command(node, "server.mjs", cfgPath),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	op.cmd.Dir = dir
	if op.stdin, err = op.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	op.cmd.Stdout = op.stdout
	op.cmd.Stderr = op.stderr
	if err := op.cmd.Start(); err != nil {
		t.Fatalf("start oidc-provider %s: %v", name, err)
	}
	go func() {
		op.waitErr = op.cmd.Wait()
		close(op.exited)
	}()
	t.Cleanup(func() { op.stop(t) })

	// Node loads oidc-provider's modules before it listens: ~0.4 s on a
	// quiet machine, but once over 15 s on a loaded one. Twice the usual
	// start-up bound costs nothing when it is quick.
	timer := time.NewTimer(2 * startTimeout)
	defer timer.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := readyLine.FindStringSubmatch(op.stdout.String()); m != nil {
			op.Issuer = m[1]
			return op
		}
		select {
		case <-op.exited:
			op.reported = true
			t.Fatalf("oidc-provider %s exited before it was ready: %v", name, op.waitErr)
		case <-timer.C:
			t.Fatalf("oidc-provider %s was not ready within %v", name, 2*startTimeout)
		case <-tick.C:
		}
	}
}

// issued returns the authorization codes and tokens the provider has stored so far.
func (op *nodeOP) issued() []string {
	var values []string
	for line := range strings.Lines(op.stdout.String()) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "ISSUED" {
			values = append(values, f[2])
		}
	}
	return values
}

// stop sends SIGTERM and waits for a clean exit (killing the process after [stopTimeout]); it
// fails the test when the process exited early or uncleanly, and logs its output if the test
// failed.
func (op *nodeOP) stop(t *testing.T) {
	t.Helper()
	if err := op.terminate(); err != nil && !op.reported {
		t.Error(err)
	}
	if t.Failed() {
		t.Logf("oidc-provider %s stdout:\n%s\noidc-provider %s stderr:\n%s",
			op.name, op.stdout.String(), op.name, op.stderr.String())
	}
}

// terminate ends the process and says how that went.
func (op *nodeOP) terminate() error {
	select {
	case <-op.exited:
		return fmt.Errorf("oidc-provider %s exited during the test: %v", op.name, op.waitErr)
	default:
	}
	_ = op.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-op.exited:
		if op.waitErr != nil {
			return fmt.Errorf("oidc-provider %s did not exit cleanly after SIGTERM: %w", op.name, op.waitErr)
		}
		return nil
	case <-timer.C:
		_ = op.cmd.Process.Kill()
		<-op.exited
		return fmt.Errorf("oidc-provider %s still ran %v after SIGTERM; killed it", op.name, stopTimeout)
	}
}
