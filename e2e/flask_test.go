//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/oidc-broker/oidc-broker/demo"
)

// debianPython is the interpreter that has Debian's python3-flask and python3-jwt (a python3
// earlier on PATH may be another one without them).
const debianPython = "/usr/bin/python3"

// flaskSetup is one way the Flask example app (examples/flask/app.py, with the oidc_broker
// package of clients/python) runs behind the real broker.
type flaskSetup struct {
	name  string
	nginx bool   // behind nginx auth_request (the integrations.md template), else the broker's reverse proxy
	mode  string // the package's OIDC_BROKER_MODE: "assertion" (verified against the JWKS) or "headers"
}

// TestFlaskAppBehindBroker drives Chromium through the Flask example app behind the real
// broker, in reverse-proxy mode and behind nginx auth_request, with the package verifying the
// assertion or trusting the headers: the public page anonymously, sign-in, the name shown, a
// group-gated page allowed and another refused, a session that ends mid-page (the page
// script follows the 401's sign_in_url and comes back), and sign-out.
func TestFlaskAppBehindBroker(t *testing.T) {
	t.Parallel()
	python := findFlaskPython(t)
	for _, setup := range []flaskSetup{
		{name: "proxy/assertion", mode: "assertion"},
		{name: "proxy/headers", mode: "headers"},
		{name: "nginx/assertion", nginx: true, mode: "assertion"},
		{name: "nginx/headers", nginx: true, mode: "headers"},
	} {
		t.Run(setup.name, func(t *testing.T) {
			origin := startFlaskBehindBroker(t, python, setup)
			b := newBrowser(t)
			testFlaskApp(b, origin)
		})
	}
}

// startLogoutIdP starts a demo IdP with the acme demo users and one client for the broker at
// origin, which may also come back after signing out at the IdP (RP-initiated logout).
func startLogoutIdP(t *testing.T, origin string) *httptest.Server {
	t.Helper()
	idp := httptest.NewUnstartedServer(nil)
	h, err := demo.NewIdP(demo.IdPConfig{
		Issuer: "http://" + idp.Listener.Addr().String(),
		Title:  "Acme (demo IdP)",
		Users:  demo.DemoUsers("acme"),
		Clients: []demo.Client{{ID: idpClientID, Secret: idpClientSecret,
			RedirectURIs:           []string{origin + "/oauth2/callback/acme"},
			PostLogoutRedirectURIs: []string{origin + "/oauth2/signed_out/acme"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = h
	idp.Start()
	t.Cleanup(idp.Close)
	return idp
}

// findFlaskPython returns Debian's python3 after checking that it has the modules the example
// needs, or fails the test: ./scripts/test installs them.
func findFlaskPython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(debianPython, "-c", "import flask, jwt, cryptography").CombinedOutput()
	if err != nil {
		t.Fatalf("%s lacks flask, jwt or cryptography (run ./scripts/test, which installs python3-flask and python3-jwt): %v\n%s",
			debianPython, err, out)
	}
	return debianPython
}

// startFlaskBehindBroker starts the IdP, the broker (serve), nginx when asked, and the Flask
// example, and returns the origin the browser uses.
func startFlaskBehindBroker(t *testing.T, python string, setup flaskSetup) string {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, 3) // broker, app, nginx
	brokerPort, appPort, nginxPort := ports[0], ports[1], ports[2]
	appURL := fmt.Sprintf("http://127.0.0.1:%d", appPort)
	origin := fmt.Sprintf("http://127.0.0.1:%d", brokerPort)
	trusted, upstream := "{}", appURL
	if setup.nginx {
		origin = fmt.Sprintf("https://127.0.0.1:%d", nginxPort)
		trusted, upstream = "{x_for: 1, x_proto: 1, x_host: 1, x_port: 1, from: [127.0.0.1]}", ""
	}
	idp := startLogoutIdP(t, origin)
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
trusted_proxies: %s
upstream: %q
log:
  level: debug
providers:
  - id: acme
    name: Acme
    issuer: %q
    client_id: %q
    client_secret: %q
    scopes: [openid, email, profile, groups]
routes:
  - {path: "/{$}", public: true}
  - {path: /static/, public: true}
assertion:
  enabled: true
  audience: %q
`, brokerPort, trusted, upstream, idp.URL, idpClientID, idpClientSecret, appURL)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, path)
	startFlaskExample(t, python, appPort, map[string]string{
		"OIDC_BROKER_MODE":     setup.mode,
		"OIDC_BROKER_ISSUER":   origin, // the assertion's iss: the broker's external origin
		"OIDC_BROKER_AUDIENCE": appURL,
		"OIDC_BROKER_JWKS_URL": fmt.Sprintf("http://127.0.0.1:%d/oauth2/jwks", brokerPort),
	})
	if setup.nginx {
		cert := newTestCert(t, dir)
		startNginx(t, findNginx(t), filepath.Join("testdata", "nginx-auth-request.conf.tmpl"), nginxData{
			Dir: dir, ListenPort: nginxPort, UpstreamPort: brokerPort, AppPort: appPort,
			CertFile: cert.CertFile, KeyFile: cert.KeyFile,
		})
	}
	return origin
}

// startFlaskExample runs examples/flask/app.py on 127.0.0.1:port with env, and waits until it
// accepts connections. It is killed when the test ends; its output is logged if the test
// failed.
func startFlaskExample(t *testing.T, python string, port int, env map[string]string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join(root, "examples", "flask", "app.py"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "clients", "python"), fmt.Sprintf("PORT=%d", port),
		"PYTHONDONTWRITEBYTECODE=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Flask example: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("Flask example output:\n%s", output.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("the Flask example exited before listening: %v\n%s", err, output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Flask example did not listen within %v\n%s", startTimeout, output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testFlaskApp walks the example app at origin as bob (group engineering).
func testFlaskApp(b *browser, origin string) {
	b.t.Helper()
	// Anonymous: the public page, from the app, with a sign-in link.
	if resp := b.navigate(origin + "/"); resp.URL != origin+"/" || resp.Status != http.StatusOK {
		b.t.Fatalf("GET / anonymously ended at %s (status %d), want the public page", resp.URL, resp.Status)
	}
	if link := b.text("#sign-in-link"); link != "Sign in" {
		b.t.Fatalf("anonymous page: sign-in link %q", link)
	}

	b.click("#sign-in-link")
	flaskSignIn(b, origin, "bob", origin+"/")
	if name := b.text("#name"); name != "Bob Brown" {
		b.t.Errorf("signed-in page greets %q, want %q", name, "Bob Brown")
	}

	// Groups, decided by the package in the app: bob is in engineering, not in admins.
	if resp := b.navigate(origin + "/reports"); resp.Status != http.StatusOK || b.text("main h1") != "Reports" {
		b.t.Errorf("GET /reports as bob: status %d, want 200 and the page", resp.Status)
	}
	if resp := b.navigate(origin + "/admin"); resp.Status != http.StatusForbidden {
		b.t.Errorf("GET /admin as bob: status %d, want 403", resp.Status)
	}

	// An API call of the page, signed in.
	b.navigate(origin + "/")
	b.do("ask who I am", chromedp.Click(chromedp.CSS("#whoami")), chromedp.WaitVisible(chromedp.CSS("#me")))
	b.do("wait for the answer", chromedp.Poll[chromedp.Void](`document.getElementById("me").textContent === "acme:acme-bob"`))

	// The session ends mid-page: the next API call gets the broker's 401, and the page
	// script sends the browser to sign in, then back to this page.
	run(b, "clear the cookies", chromedp.Action[cdp.Empty](func(ctx context.Context, t *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, t, network.ClearBrowserCookies, cdp.Empty{})
	}))
	resp := b.loads("ask who I am without a session", chromedp.Click(chromedp.CSS("#whoami")))
	if !strings.Contains(resp.URL, "/login?authRequestID=") && !strings.HasPrefix(resp.URL, origin+"/oauth2/sign_in?rd=") {
		b.t.Fatalf("after the session ended, the API call led to %s, want the sign-in", resp.URL)
	}
	flaskSignIn(b, origin, "bob", origin+"/")

	// Sign out through the broker's confirmation page; the public page is anonymous again.
	b.click("#sign-out-link")
	b.waitVisible("#sign-out")
	b.click("#sign-out")
	if text := b.text("main"); !strings.Contains(text, "You are signed out.") {
		b.t.Fatalf("after sign-out the page reads %q", text)
	}
	b.navigate(origin + "/")
	if link := b.text("#sign-in-link"); link != "Sign in" {
		b.t.Errorf("after sign-out the public page shows %q, want the sign-in link", link)
	}
	if resp := b.navigate(origin + "/reports"); !strings.HasPrefix(resp.URL, origin+"/oauth2/sign_in?rd=") {
		b.t.Errorf("GET /reports after sign-out ended at %s, want the sign-in page", resp.URL)
	}
}

// flaskSignIn continues a sign-in from wherever the browser is: the broker's selection page
// (then the IdP's link) or the IdP's login form, and checks that it ends at want.
func flaskSignIn(b *browser, origin, user, want string) {
	b.t.Helper()
	loc := b.location()
	if strings.HasPrefix(loc, origin+"/oauth2/sign_in") {
		b.click("#idp-acme")
		loc = b.location()
	}
	if !strings.Contains(loc, "/login?authRequestID=") {
		b.t.Fatalf("signing in: at %s, want the IdP's login page", loc)
	}
	b.typeInto("#username", user)
	b.typeInto("#password", demoPassword)
	if resp := b.click(`form button[type="submit"]`); resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("after the IdP's login: at %s (status %d), want %s", resp.URL, resp.Status, want)
	}
}
