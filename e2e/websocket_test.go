//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
)

// TestWebSocketThroughBroker opens a real WebSocket through "oidc-broker serve" in
// reverse-proxy mode, to an echo server on its own upstream path: without a session the
// handshake gets 401 (never a redirect, which a WebSocket cannot follow); after a sign-in it
// switches protocols, the upstream sees the identity on the upgrade request and none of the
// client's forged identity headers nor the session cookie, and messages pass both ways.
func TestWebSocketThroughBroker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp := startRecordingIdP(t, public+"/oauth2/callback/acme")
	ws := httptest.NewServer(wsecho.Handler())
	t.Cleanup(ws.Close)
	app := httptest.NewServer(demo.NewApp())
	t.Cleanup(app.Close)

	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
upstreams:
  - {path: /, url: %q}
  - {path: /ws/, url: %q}
providers:
  - {id: acme, name: Acme, issuer: %q, client_id: %q, client_secret: %q}
`, port, app.URL, ws.URL, idp.URL, idpClientID, idpClientSecret)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, path)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	wsURL := public + "/ws/chat"
	browserLike := forgedIdentity.Clone()
	browserLike.Set("Accept", "text/html")
	browserLike.Set("Origin", public)

	conn, resp, err := wsecho.Dial(ctx, nil, jar, wsURL, browserLike)
	if err == nil {
		conn.Close()
		t.Fatal("a WebSocket without a session was let through")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
		t.Fatalf("a WebSocket without a session: %v; want 401 without a Location", err)
	}

	signInThrough(t, client, public, idp, "alice", "/")
	conn, _, err = wsecho.Dial(ctx, nil, jar, wsURL, browserLike)
	if err != nil {
		t.Fatalf("a WebSocket with a session: %v", err)
	}
	defer conn.Close()
	hello, err := conn.Hello()
	if err != nil {
		t.Fatal(err)
	}
	if hello.Path != "/ws/chat" {
		t.Errorf("the upstream saw path %q, want /ws/chat", hello.Path)
	}
	var identity []string
	for name, values := range hello.Header {
		if strings.HasPrefix(strings.ToUpper(strings.ReplaceAll(name, "_", "-")), "X-AUTH-REQUEST-") {
			identity = append(identity, name+": "+strings.Join(values, ","))
		}
	}
	for name, want := range map[string]string{
		"X-Auth-Request-User": "acme:acme-alice", "X-Auth-Request-Email": "alice@acme.example",
		"X-Auth-Request-Groups": "admins,engineering", "X-Forwarded-For": "127.0.0.1",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": strings.TrimPrefix(public, "http://"),
		"Upgrade": "websocket", "Cookie": "", "X-Auth-Request-Anything": "", "X_auth_request_user": "",
	} {
		if got := strings.Join(hello.Header.Values(name), ","); got != want {
			t.Errorf("the upgrade request reached the upstream with %s %q, want %q (identity headers: %q)", name, got, want, identity)
		}
	}
	for _, msg := range []string{"hello", strings.Repeat("0123456789", 10000)} {
		if err := conn.WriteText(msg); err != nil {
			t.Fatal(err)
		}
		got, err := conn.ReadText()
		if err != nil || got != msg {
			t.Fatalf("echo of a %d-byte message: got %d bytes, %v", len(msg), len(got), err)
		}
	}
}
