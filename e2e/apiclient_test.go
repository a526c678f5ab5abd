//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiScriptResult is one line of testdata/api_client.py's output.
type apiScriptResult struct {
	URL             string          `json:"url"`
	Status          int             `json:"status"`
	WWWAuthenticate string          `json:"www_authenticate"`
	SetCookie       string          `json:"set_cookie"`
	Body            json.RawMessage `json:"body"`
}

// appHeaders are the identity headers the demo app says it received (none when the body is
// not its JSON).
func (r apiScriptResult) appHeaders() map[string]string {
	var v struct {
		Headers map[string]string `json:"headers"`
	}
	_ = json.Unmarshal(r.Body, &v)
	return v.Headers
}

// TestAPIClientWithClientCredentials: a Python script (testdata/api_client.py, quoted in
// docs/api-clients.md) gets an RFC 9068 access token from npm oidc-provider with the client
// credentials grant and calls the app through real nginx auth_request and through the
// broker's reverse proxy: the app sees the script as <provider>:<client id>, with no session;
// a forged token and one of another resource are refused with Bearer invalid_token and never
// reach the app.
func TestAPIClientWithClientCredentials(t *testing.T) {
	t.Parallel()
	nginx := findNginx(t)
	dir := t.TempDir()
	cert := newTestCert(t, dir)
	ports := freePorts(t, 2)
	origin := fmt.Sprintf("https://127.0.0.1:%d", ports[0])

	op := startNodeOP(t, "api", nodeOPConfig{
		CookiePrefix: "api",
		APIResource:  &nodeOPAPIResource{Audience: "api://reports", Scope: "reports.read reports.write"},
		Clients: []nodeOPClient{
			{ClientID: "broker", ClientSecret: "broker-secret-0123456789", RedirectURIs: []string{origin + "/oauth2/callback/node"},
				TokenEndpointAuthMethod: "client_secret_basic"},
			{ClientID: "reporting-script", ClientSecret: "script-secret-0123456789", GrantTypes: []string{"client_credentials"},
				TokenEndpointAuthMethod: "client_secret_basic"},
		},
	})
	app := startRecordingApp(t)
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
trusted_proxies: {x_for: 1, x_proto: 1, x_host: 1, x_port: 1, from: [127.0.0.1]}
upstream: %q
log:
  level: debug
providers:
  - id: node
    issuer: %q
    client_id: broker
    client_secret: broker-secret-0123456789
    api_tokens:
      audiences: [api://reports]
      scopes: [reports.read]
`, ports[1], app.URL, op.Issuer)
	confPath := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	broker, _ := startServe(t, confPath)
	startNginx(t, nginx, filepath.Join("testdata", "nginx-auth-request.conf.tmpl"), nginxData{
		Dir: dir, ListenPort: ports[0], UpstreamPort: ports[1], AppPort: app.port(t),
		CertFile: cert.CertFile, KeyFile: cert.KeyFile,
	})
	waitHealthy(t, newProxyClient(t, cert), origin+"/oauth2/sign_in")

	urls := []string{origin + "/reports/summary?via=nginx", broker.URL + "/reports/summary?via=proxy"}
	env := []string{"TOKEN_URL=" + op.Issuer + "/token", "CLIENT_ID=reporting-script", "CLIENT_SECRET=script-secret-0123456789",
		"SCOPE=reports.read", "RESOURCE=api://reports", "REQUESTS_CA_BUNDLE=" + cert.CertFile}
	for _, res := range runAPIScript(t, env, urls) {
		if h := res.appHeaders(); res.Status != http.StatusOK || h["X-Auth-Request-User"] != "node:reporting-script" ||
			h["X-Auth-Request-Provider"] != "node" || res.SetCookie != "" {
			t.Errorf("%s: status %d, the app saw %v, Set-Cookie %q", res.URL, res.Status, h, res.SetCookie)
		}
	}
	if n := app.count(); n != 2 {
		t.Errorf("the app got %d requests, want 2", n)
	}

	// A token the script forged, and a real one without the required scope: refused on
	// both paths, with the RFC 6750 challenge; the app sees neither.
	forged := "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + base64.RawURLEncoding.EncodeToString(
		[]byte(`{"iss":"`+op.Issuer+`","sub":"x","aud":"api://reports","exp":9999999999,"scope":"reports.read"}`)) + "."
	for _, tc := range []struct {
		name, env, challenge string
		status               int
	}{
		{"alg none", "ACCESS_TOKEN=" + forged, `error="invalid_token"`, http.StatusUnauthorized},
		{"scope missing", "SCOPE=reports.write", `error="insufficient_scope"`, http.StatusForbidden},
	} {
		for _, res := range runAPIScript(t, append(env, tc.env), urls) {
			// nginx passes an auth_request's WWW-Authenticate on with a 401 only; its 403
			// is its own (docs/api-clients.md).
			nginx403 := tc.status == http.StatusForbidden && strings.HasPrefix(res.URL, origin)
			if res.Status != tc.status || (!nginx403 && (!strings.HasPrefix(res.WWWAuthenticate, `Bearer realm="oidc-broker"`) ||
				!strings.Contains(res.WWWAuthenticate, tc.challenge))) {
				t.Errorf("%s, %s: status %d, WWW-Authenticate %q", tc.name, res.URL, res.Status, res.WWWAuthenticate)
			}
		}
	}
	if n := app.count(); n != 2 {
		t.Errorf("refused tokens reached the app: %d requests", n)
	}
	for _, v := range op.issued() {
		if strings.Contains(broker.stderr.String(), v) {
			t.Errorf("the broker logged a token the IdP issued")
		}
	}
}

// runAPIScript runs testdata/api_client.py with Debian's python3 (requests) and the
// environment env, and reads its lines.
func runAPIScript(t *testing.T, env, urls []string) []apiScriptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{filepath.Join("testdata", "api_client.py")}, urls...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("api_client.py: %v\n%s\n%s", err, out, stderr)
	}
	var results []apiScriptResult
	for line := range strings.Lines(string(out)) {
		var r apiScriptResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("api_client.py printed %q: %v", line, err)
		}
		results = append(results, r)
	}
	if len(results) != len(urls) {
		t.Fatalf("api_client.py printed %d results for %d URLs", len(results), len(urls))
	}
	return results
}
