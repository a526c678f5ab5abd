//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oidc-broker/oidc-broker/demo"
)

// forgedIdentity are identity headers a client sends to pass itself off as someone else, in
// the broker's spelling, in other cases and with underscores (which CGI-style apps read as
// the same variable). Every request of the forward-auth tests carries them.
var forgedIdentity = http.Header{
	"X-Auth-Request-User":               {"evil"},
	"X-Auth-Request-Provider":           {"evil"},
	"X-Auth-Request-Email":              {"evil@evil.example"},
	"X-Auth-Request-Preferred-Username": {"evil"},
	"X-Auth-Request-Groups":             {"admins"},
	"X-Auth-Request-Assertion":          {"forged"},
	"X-Auth-Request-Anything":           {"evil"},
	"x_auth_request_user":               {"evil"},
}

// forwardAuthSetup is a proxy in front of the demo app that asks the broker about each
// request, and what the app receives through it.
type forwardAuthSetup struct {
	via string // the proxy, as the test's rd says
	// copied lists the identity headers the proxy copies from the broker's answer into the
	// request to the app; the app must receive exactly these of the user's, and no other
	// X-Auth-Request-* header.
	copied []string
	// assertion: the proxy also copies X-Auth-Request-Assertion, the broker's signed
	// assertion, when the broker sends one.
	assertion bool
	// keepsOthers: the proxy can only replace the headers it sets, so a client's
	// X-Auth-Request-* under any other name reaches the app (nginx; docs/integrations.md
	// says so). Underscore spellings never may.
	keepsOthers bool
}

// TestForwardAuthNginx runs the app behind real nginx terminating TLS with auth_request to
// the real broker, with the configuration docs/integrations.md quotes.
func TestForwardAuthNginx(t *testing.T) {
	t.Parallel()
	nginx := findNginx(t)
	tmplPath := filepath.Join("testdata", "nginx-auth-request.conf.tmpl")
	const trusted = "{x_for: 1, x_proto: 1, x_host: 1, x_port: 1, from: [127.0.0.1]}"
	checkDocumentedTrust(t, tmplPath, trusted)
	dir := t.TempDir()
	cert := newTestCert(t, dir)
	port := freePorts(t, 1)[0]
	origin := fmt.Sprintf("https://127.0.0.1:%d", port)

	idp := startRecordingIdP(t, origin+"/oauth2/callback/acme")
	app := startRecordingApp(t)
	_, brokerAddr := startServe(t, writeServeConfig(t, dir, trusted, idp.URL, ""))
	startNginx(t, nginx, tmplPath, nginxData{
		Dir: dir, ListenPort: port, UpstreamPort: brokerAddr.Port, AppPort: app.port(t),
		CertFile: cert.CertFile, KeyFile: cert.KeyFile,
	})
	testForwardAuth(t, newProxyClient(t, cert), origin, idp, app, forwardAuthSetup{via: "nginx",
		copied: []string{"X-Auth-Request-User", "X-Auth-Request-Provider", "X-Auth-Request-Email",
			"X-Auth-Request-Preferred-Username", "X-Auth-Request-Groups", "X-Auth-Request-Name"}, assertion: true, keepsOthers: true})
}

// testForwardAuth checks one proxy with forward-auth to the broker at origin: an anonymous
// browser is sent to the broker's sign-in page and back to the very URL it asked for (query
// and all), an API client gets 401 and never reaches the app; after a sign-in through the
// proxy the app receives the identity the proxy copied and none of the client's forged
// headers; and a user without a verified email or groups gets no such headers.
func testForwardAuth(t *testing.T, client *http.Client, origin string, idp *recordingIdP, app *recordingApp, setup forwardAuthSetup) {
	t.Helper()
	waitHealthy(t, client, origin+"/oauth2/sign_in")
	rd := "/app?via=" + setup.via + "&x=a%26b+c"

	resp, body := fetch(t, client, http.MethodGet, origin+rd, nil, forgedIdentity)
	if want := "/oauth2/sign_in?rd=" + url.QueryEscape(rd); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("anonymous GET %s through %s: status %d, Location %q; want 302 to %q\n%s",
			rd, setup.via, resp.StatusCode, resp.Header.Get("Location"), want, body)
	}
	api := forgedIdentity.Clone()
	api.Set("Accept", "application/json")
	if resp, body := fetch(t, client, http.MethodPost, origin+rd, url.Values{"a": {"b"}}, api); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous API POST %s through %s: status %d, want 401\n%s", rd, setup.via, resp.StatusCode, body)
	}
	if n := app.count(); n != 0 {
		t.Fatalf("the app received %d requests from anonymous clients", n)
	}

	// The sign-in page works through the proxy, and brings the browser back to rd.
	if resp, body := fetch(t, client, http.MethodGet, origin+"/oauth2/sign_in?rd="+url.QueryEscape(rd), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /oauth2/sign_in through %s: status %d\n%s", setup.via, resp.StatusCode, body)
	}
	signInThrough(t, client, origin, idp, "alice", rd)

	want := map[string]string{
		"X-Auth-Request-User": "acme:acme-alice", "X-Auth-Request-Provider": "acme",
		"X-Auth-Request-Email": "alice@acme.example", "X-Auth-Request-Preferred-Username": "alice",
		"X-Auth-Request-Groups": "admins,engineering", "X-Auth-Request-Name": "Alice Anderson",
	}
	checkAppIdentity(t, client, origin+rd, app, setup, want)
	checkForbiddenPage(t, client, origin, idp, app, setup)

	// carol's email is not verified and she has no groups: the proxy must not make up values
	// (older Caddy copies a missing header as the text of its placeholder) or let the
	// client's through.
	carol := newBrowserLike(t, client)
	signInThrough(t, carol, origin, idp, "carol", "/")
	checkAppIdentity(t, carol, origin+"/app", app, setup, map[string]string{
		"X-Auth-Request-User": "acme:acme-carol", "X-Auth-Request-Provider": "acme", "X-Auth-Request-Preferred-Username": "carol",
		"X-Auth-Request-Name": "Carol Clark",
	})
}

// signInThrough signs client in as user through the proxy at origin: the broker's start,
// the IdP's login (directly; it is not behind the proxy), the broker's callback, which must
// send the browser to rd.
func signInThrough(t *testing.T, client *http.Client, origin string, idp *recordingIdP, user, rd string) {
	t.Helper()
	callback := origin + "/oauth2/callback/acme"
	resp, body := fetch(t, client, http.MethodGet, origin+"/oauth2/start/acme?rd="+url.QueryEscape(rd), nil, forgedIdentity)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /oauth2/start/acme: status %d, want 302\n%s", resp.StatusCode, body)
	}
	authURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(authURL.String(), idp.URL+"/authorize?") {
		t.Fatalf("start redirected to %q, want the IdP's %s/authorize", resp.Header.Get("Location"), idp.URL)
	}
	if got := authURL.Query().Get("redirect_uri"); got != callback {
		t.Fatalf("redirect_uri sent to the IdP is %q, want %q", got, callback)
	}
	cb := loginAtIdP(t, client, authURL, user, callback)
	resp, body = fetch(t, client, http.MethodGet, cb.String(), nil, forgedIdentity)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != rd {
		t.Fatalf("callback: status %d, Location %q; want 302 to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), rd, body)
	}
}

// checkAppIdentity fetches rawURL with the forged identity headers and checks the identity
// headers the app received: those the proxy copies, with the values of want, and nothing
// else of the kind.
func checkAppIdentity(t *testing.T, client *http.Client, rawURL string, app *recordingApp, setup forwardAuthSetup, want map[string]string) {
	t.Helper()
	hdr := forgedIdentity.Clone()
	hdr.Set("Accept", "application/json")
	resp, body := fetch(t, client, http.MethodGet, rawURL, nil, hdr)
	var seen struct {
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &seen); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET %s through %s: status %d (%v)\n%s", rawURL, setup.via, resp.StatusCode, err, body)
	}
	u, _ := url.Parse(rawURL)
	if seen.Path != u.Path {
		t.Errorf("the app received path %q, want %q", seen.Path, u.Path)
	}
	expected := map[string]string{}
	for _, name := range setup.copied {
		if v, ok := want[name]; ok {
			expected[name] = v
		}
	}
	for name, got := range seen.Headers {
		if name == "X-Auth-Request-Assertion" && got != "forged" && setup.assertion {
			continue // the broker's signed assertion, when it sends one
		}
		if name == "X-Auth-Request-Anything" && setup.keepsOthers && got == "evil" {
			continue
		}
		if w, ok := expected[name]; !ok || got != w {
			t.Errorf("through %s the app received %s: %q, want %q", setup.via, name, got, w)
		}
	}
	for name, w := range expected {
		if _, ok := seen.Headers[name]; !ok {
			t.Errorf("through %s the app did not receive %s (want %q)", setup.via, name, w)
		}
	}
	for name := range app.last() {
		if strings.Contains(strings.ToLower(name), "auth_request") {
			t.Errorf("through %s the app received %s, which an underscore-folding app reads as an identity header", setup.via, name)
		}
	}
}

// newBrowserLike returns a client like c with an empty cookie jar of its own: another
// browser.
func newBrowserLike(t *testing.T, c *http.Client) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: c.Transport, Jar: jar, Timeout: c.Timeout, CheckRedirect: c.CheckRedirect}
}

// recordingApp is the demo app on httptest, recording the headers of the last request and
// counting requests.
type recordingApp struct {
	*httptest.Server
	mu     sync.Mutex
	n      int
	header http.Header
}

func startRecordingApp(t *testing.T) *recordingApp {
	t.Helper()
	app := &recordingApp{}
	h := demo.NewApp()
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		app.n++
		app.header = r.Header.Clone()
		app.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	return app
}

func (a *recordingApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *recordingApp) last() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.header.Clone()
}

func (a *recordingApp) port(t *testing.T) int {
	t.Helper()
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	var p int
	if _, err := fmt.Sscan(u.Port(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkForbiddenPage: bob (not in admins) asks for /admins/ through the proxy and sees the
// broker's 403 page, not the proxy's: who is signed in, "Use another account", and the
// request ID that the broker's log carries; an API client gets the broker's JSON. The app
// receives neither request.
func checkForbiddenPage(t *testing.T, client *http.Client, origin string, idp *recordingIdP, app *recordingApp, setup forwardAuthSetup) {
	t.Helper()
	bob := newBrowserLike(t, client)
	signInThrough(t, bob, origin, idp, "bob", "/")
	before := app.count()
	resp, body := fetch(t, bob, http.MethodGet, origin+"/admins/x?y=1", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `<strong id="who-user">bob</strong>`) ||
		!strings.Contains(body, `id="use-another-account"`) || !strings.Contains(body, `<code id="request-id">`) {
		t.Fatalf("bob on /admins/ through %s: status %d, want the broker's 403 page\n%s", setup.via, resp.StatusCode, body)
	}
	api := http.Header{"Accept": {"application/json"}}
	resp, body = fetch(t, bob, http.MethodGet, origin+"/admins/x", nil, api)
	var got struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &got) != nil || got.Error != "forbidden" || got.RequestID == "" {
		t.Errorf("API client on /admins/ through %s: status %d %s", setup.via, resp.StatusCode, body)
	}
	if n := app.count(); n != before {
		t.Errorf("the app received %d requests that were refused", n-before)
	}
}
