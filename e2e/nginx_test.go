//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/demologin"
)

// nginxSetup is one of the nginx configurations under proxyfix/testdata/nginx, which
// docs/proxies.md quotes, and what the broker behind it must do.
type nginxSetup struct {
	name string // the template is proxyfix/testdata/nginx/<name>.conf.tmpl
	// trusted is the broker's trusted_proxies in YAML flow style, exactly as the template's
	// header comment gives it; the test checks the comment and configures the broker so.
	trusted string
	prefix  string // the path prefix nginx serves the broker under, "" for the root
	// cookieName and cookiePath are the session cookie's: https, so Secure, and the
	// __Host- prefix only at the root.
	cookieName, cookiePath string
}

var nginxSetups = []nginxSetup{
	{
		name:       "one-hop",
		trusted:    "{x_for: 1, x_proto: 1, x_host: 1, x_port: 1, from: [127.0.0.1]}",
		cookieName: "__Host-oidc_broker", cookiePath: "/",
	},
	{
		name:       "two-hop",
		trusted:    "{x_for: 2, x_proto: 1, x_host: 1, x_port: 1, x_prefix: 1, from: [127.0.0.1]}",
		prefix:     "/auth",
		cookieName: "__Secure-oidc_broker", cookiePath: "/auth/",
	},
	{
		name:       "forwarded",
		trusted:    "{forwarded: 1, from: [127.0.0.1]}",
		cookieName: "__Host-oidc_broker", cookiePath: "/",
	},
}

// forgedHeaders are what a client sends to pass itself off as another host, scheme, port,
// prefix and address. Every request of the test through nginx carries them.
var forgedHeaders = http.Header{
	"X-Forwarded-Host":   {"evil.example"},
	"X-Forwarded-Proto":  {"http"},
	"X-Forwarded-Port":   {"1"},
	"X-Forwarded-Prefix": {"/evil"},
	"Forwarded":          {"for=6.6.6.6;host=evil.example;proto=http"},
	"X-Forwarded-For":    {"6.6.6.6"},
}

// The demo IdP's client for the broker.
const (
	idpClientID     = "broker"
	idpClientSecret = "nginx-e2e-secret-0123456789abcdef"
)

// TestBehindNginx runs the real broker behind real nginx terminating TLS on 127.0.0.1, with
// each configuration of docs/proxies.md and the trusted_proxies it documents, and signs in
// with a client that forges every forwarding header. The redirect_uri the IdP receives must
// be the public https URL, the session cookie must be Secure with the right prefix, and the
// app must receive the identity; a request that bypasses nginx must not be believed at all.
func TestBehindNginx(t *testing.T) {
	nginx := findNginx(t)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, setup := range nginxSetups {
		t.Run(setup.name, func(t *testing.T) {
			t.Parallel()
			testBehindNginx(t, nginx, filepath.Join(root, "proxyfix", "testdata", "nginx", setup.name+".conf.tmpl"), setup)
		})
	}
}

// testBehindNginx runs one setup: the demo IdP, the echo app and the broker (on a port of
// its own choosing, no public_url) on httptest and loopback, nginx rendered from tmplPath in
// front of the broker, and a sign-in through nginx with [forgedHeaders] on every request.
func testBehindNginx(t *testing.T, nginx, tmplPath string, setup nginxSetup) {
	checkDocumentedTrust(t, tmplPath, setup.trusted)
	dir := t.TempDir()
	cert := newTestCert(t, dir)
	// nginx's TLS port, and the inner hop's of the two-hop template.
	ports := freePorts(t, 2)
	origin := fmt.Sprintf("https://127.0.0.1:%d", ports[0]) // what the client sees
	public := origin + setup.prefix                         // where the broker is
	callback := public + "/oauth2/callback/acme"

	idp := startRecordingIdP(t, callback)
	app := startEchoApp(t)
	b, brokerAddr := startServe(t, writeServeConfig(t, dir, setup.trusted, idp.URL, app.URL))
	startNginx(t, nginx, tmplPath, nginxData{
		Dir: dir, ListenPort: ports[0], MiddlePort: ports[1], UpstreamPort: brokerAddr.Port,
		CertFile: cert.CertFile, KeyFile: cert.KeyFile,
	})
	client := newProxyClient(t, cert)
	waitHealthy(t, client, public+"/healthz")

	// Start through nginx: the redirect_uri is the public one, whatever the client claims.
	rd := setup.prefix + "/app?via=nginx"
	resp, body := fetch(t, client, http.MethodGet, public+"/oauth2/start/acme?rd="+url.QueryEscape(rd), nil, forgedHeaders)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /oauth2/start/acme through nginx: status %d, want 302\n%s", resp.StatusCode, body)
	}
	authURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(authURL.String(), idp.URL+"/authorize?") {
		t.Fatalf("start redirected to %q, want the IdP's %s/authorize", resp.Header.Get("Location"), idp.URL)
	}
	if got := authURL.Query().Get("redirect_uri"); got != callback {
		t.Fatalf("redirect_uri sent to the IdP is %q, want %q", got, callback)
	}
	checkSessionCookie(t, "start", resp, setup)

	// Sign in at the IdP directly (it is not behind nginx), back to the callback through nginx.
	cb := loginAtIdP(t, client, authURL, "alice", callback)
	resp, body = fetch(t, client, http.MethodGet, cb.String(), nil, forgedHeaders)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != rd {
		t.Fatalf("callback through nginx: status %d, Location %q; want 302 to %q\n%s",
			resp.StatusCode, resp.Header.Get("Location"), rd, body)
	}
	checkSessionCookie(t, "callback", resp, setup)
	if got := idp.redirectURIs(); !slices.Equal(got, []string{callback}) {
		t.Errorf("the IdP received redirect_uri %q, want exactly [%q]", got, callback)
	}

	// The app behind the broker, through nginx, with the session.
	resp, body = fetch(t, client, http.MethodGet, origin+rd, nil, forgedHeaders)
	var echo echoed
	if err := json.Unmarshal([]byte(body), &echo); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET %s through nginx after sign-in: status %d (%v)\n%s", rd, resp.StatusCode, err, body)
	}
	if got, want := echo.Header.Get("X-Auth-Request-User"), "acme:acme-alice"; got != want {
		t.Errorf("the app received X-Auth-Request-User %q, want %q", got, want)
	}
	if echo.Path != "/app" {
		t.Errorf("the app received path %q, want /app", echo.Path)
	}
	// What the broker itself forwards to the app is built from the trusted facts.
	for name, want := range map[string]string{
		"X-Forwarded-Host":   strings.TrimPrefix(origin, "https://"),
		"X-Forwarded-For":    "127.0.0.1",
		"X-Forwarded-Proto":  "https",
		"X-Forwarded-Port":   fmt.Sprint(ports[0]),
		"X-Forwarded-Prefix": setup.prefix,
	} {
		if got := echo.Header.Get(name); got != want {
			t.Errorf("the app received %s %q, want %q", name, got, want)
		}
	}

	checkHostPinned(t, client, origin)
	checkBypass(t, b, brokerAddr)
	checkLoggedClients(t, b)
}

// checkDocumentedTrust checks that the template's header comment names the trusted_proxies
// the test configures, so that the test proves what the documentation says.
func checkDocumentedTrust(t *testing.T, tmplPath, trusted string) {
	t.Helper()
	text, err := os.ReadFile(tmplPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "\n# Broker: trusted_proxies: " + trusted + "\n"; !strings.Contains(string(text), want) {
		t.Fatalf("%s: the header comment does not say %q", tmplPath, strings.TrimSpace(want))
	}
}

// checkSessionCookie checks that every cookie the broker set in resp is one it sets (the
// session, the pending login's, the browser binding, the last-used provider's) with the
// name, path and flags an https origin calls for.
func checkSessionCookie(t *testing.T, step string, resp *http.Response, setup nginxSetup) {
	t.Helper()
	var session, pending bool
	for _, c := range resp.Cookies() {
		// The pending login's cookie is expired (no value) at the callback.
		expired := c.MaxAge < 0 && strings.Contains(c.Name, "_login_")
		if !c.Secure || !c.HttpOnly || c.Domain != "" || (c.Value == "" && !expired) {
			t.Errorf("%s: Set-Cookie %q; want Secure, HttpOnly, no Domain and a value", step, c.String())
		}
		switch {
		case c.Name == setup.cookieName:
			session = true
			if c.Path != setup.cookiePath {
				t.Errorf("%s: session cookie %q; want Path=%s", step, c.String(), setup.cookiePath)
			}
		case c.Name == "__Host-oidc_broker_browser": // binds pending logins to this browser
			if step != "start" || c.Path != "/" {
				t.Errorf("%s: browser binding cookie %q; want it at the start only, with Path=/", step, c.String())
			}
		case c.Name == "__Secure-oidc_broker_last_idp", // the sign-in page's last-used provider
			strings.HasPrefix(c.Name, "__Secure-oidc_broker_login_"): // the pending login (sealed)
			pending = pending || !expired
			if c.Path != setup.prefix+"/oauth2/" {
				t.Errorf("%s: cookie %q; want Path=%s/oauth2/", step, c.String(), setup.prefix)
			}
		default:
			t.Errorf("%s: unexpected cookie %q", step, c.String())
		}
	}
	// The start sets the pending login's cookie and no session; the
	// callback the session and expires the pending login's cookie.
	if want := step == "callback"; session != want || pending == want {
		t.Errorf("%s: session cookie set %v, pending-login cookie set %v", step, session, pending)
	}
}

// checkHostPinned checks that nginx refuses a Host it does not serve with 421 instead of
// forwarding it to the broker (docs/proxies.md: the forwarded host is always a server_name).
func checkHostPinned(t *testing.T, client *http.Client, origin string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, origin+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "evil.example"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz with Host evil.example: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET /healthz with Host evil.example through nginx: status %d, want 421", resp.StatusCode)
	}
}

// checkBypass sends the forged headers straight to the broker, from 127.0.0.2: that peer
// is not in trusted_proxies.from, so the broker must use the connection's own facts. (From
// 127.0.0.1 it would believe them, as the counts allow: `from` trusts every process at a
// listed address, see docs/proxies.md.)
func checkBypass(t *testing.T, b *demoBroker, brokerAddr *net.TCPAddr) {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext,
		},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, body := fetch(t, client, http.MethodGet, b.URL+"/oauth2/start/acme?rd=%2F", nil, forgedHeaders)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /oauth2/start/acme directly: status %d, want 302\n%s", resp.StatusCode, body)
	}
	authURL, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	got := authURL.Query().Get("redirect_uri")
	if want := b.URL + "/oauth2/callback/acme"; got != want {
		t.Errorf("a direct request with forged headers from 127.0.0.2 got redirect_uri %q, want %q (the connection's own)", got, want)
	}
	var pending bool
	for _, c := range resp.Cookies() {
		pending = pending || strings.HasPrefix(c.Name, "oidc_broker_login_")
		if c.Secure || strings.HasPrefix(c.Name, "__") {
			t.Errorf("a direct plain-HTTP request got cookie %q, want no Secure or prefixed cookie", c.String())
		}
	}
	if !pending {
		t.Errorf("a direct plain-HTTP request got cookies %v, want the plain oidc_broker_login_ cookie", resp.Cookies())
	}
}

// loginLine matches the broker's log lines of a login, with the client address.
var loginLine = regexp.MustCompile(`msg="login (started|succeeded)".* client=(\S+)`)

// checkLoggedClients checks the client addresses the broker logged for the logins: nginx's
// peer (127.0.0.1) for the start and the callback through nginx, 127.0.0.2 for the bypass,
// and never the forged 6.6.6.6. The broker logs before it answers, but its stderr reaches
// the buffer through a pipe, so the last line may still be on its way.
func checkLoggedClients(t *testing.T, b *demoBroker) {
	t.Helper()
	want := []string{"started 127.0.0.1", "succeeded 127.0.0.1", "started 127.0.0.2"}
	var got []string
	for deadline := time.Now().Add(stopTimeout); ; time.Sleep(10 * time.Millisecond) {
		got = got[:0]
		for _, m := range loginLine.FindAllStringSubmatch(b.stderr.String(), -1) {
			got = append(got, m[1]+" "+m[2])
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the broker logged logins with clients %q, want %q", got, want)
	}
}

// recordingIdP is a demo IdP on httptest that records the redirect_uri of every
// authorization request it receives.
type recordingIdP struct {
	*httptest.Server
	mu   sync.Mutex
	uris []string
}

// startRecordingIdP starts a demo IdP with the acme demo users and one client for the broker,
// registered with redirectURI only.
func startRecordingIdP(t *testing.T, redirectURI string) *recordingIdP {
	t.Helper()
	idp := &recordingIdP{Server: httptest.NewUnstartedServer(nil)}
	h, err := demo.NewIdP(demo.IdPConfig{
		Issuer:  "http://" + idp.Listener.Addr().String(),
		Title:   "Acme (demo IdP)",
		Users:   demo.DemoUsers("acme"),
		Clients: []demo.Client{{ID: idpClientID, Secret: idpClientSecret, RedirectURIs: []string{redirectURI}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/authorize" {
			idp.mu.Lock()
			idp.uris = append(idp.uris, r.URL.Query().Get("redirect_uri"))
			idp.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	idp.Start()
	t.Cleanup(idp.Close)
	return idp
}

// redirectURIs returns the redirect_uri of each authorization request so far.
func (idp *recordingIdP) redirectURIs() []string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return slices.Clone(idp.uris)
}

// loginAtIdP walks the demo IdP's login from the authorization URL as user (see the demo
// package's documentation) and returns the URL the IdP sends the browser back to, unvisited.
func loginAtIdP(t *testing.T, client *http.Client, authURL *url.URL, user, callback string) *url.URL {
	t.Helper()
	do := func(method, u string, form url.Values) *http.Response {
		resp, body := fetch(t, client, method, u, form, nil)
		resp.Body = io.NopCloser(strings.NewReader(body))
		return resp
	}
	return demologin.Walk(t, authURL, user, do, func(loc *url.URL) bool {
		if strings.HasPrefix(loc.String(), callback+"?") {
			return true
		}
		if loc.Host != authURL.Host {
			t.Fatalf("the login at the IdP went to %s, want %s", loc, callback)
		}
		return false
	})
}

// echoed is what the echo app answers: the path and headers it received.
type echoed struct {
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

// startEchoApp starts the upstream app: it answers every request with [echoed] as JSON.
func startEchoApp(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Path: r.URL.Path, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newProxyClient returns a client for the TLS proxy: it trusts only cert, keeps cookies and
// does not follow redirects.
func newProxyClient(t *testing.T, cert testCert) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: cert.Pool}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch sends one request (a form when form is not nil, with the extra header) and returns
// the response and its body.
func fetch(t *testing.T, client *http.Client, method, rawURL string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = slices.Clone(values)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, rawURL, err)
	}
	return resp, string(b)
}

// waitHealthy polls url until it answers 200, for at most [startTimeout].
func waitHealthy(t *testing.T, client *http.Client, rawURL string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: not healthy within %v (last: %s)", rawURL, startTimeout, last)
}
