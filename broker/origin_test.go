package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// startRedirectURI runs /oauth2/start/alpha with extra request headers and
// returns the redirect_uri the IdP would receive, and the response.
func (e *env) startRedirectURI(host string, hdr map[string]string) (string, *http.Response) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/start/alpha?rd=/x", nil)
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Add(k, v)
	}
	resp, err := newBrowser().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return loc.Query().Get("redirect_uri"), resp
}

// sessionSetCookie is the Set-Cookie line of the session cookie.
func sessionSetCookie(resp *http.Response) string {
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if name, _, _ := strings.Cut(sc, "="); strings.HasSuffix(name, DefaultCookieName) {
			return sc
		}
	}
	return ""
}

// pendingSetCookie is the Set-Cookie of a pending login in resp, or "".
func pendingSetCookie(resp *http.Response) string {
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if name, _, _ := strings.Cut(sc, "="); strings.Contains(name, DefaultCookieName+pending.CookieInfix) {
			return sc
		}
	}
	return ""
}

var spoofHeaders = map[string]string{
	"X-Forwarded-Host":   "evil.example",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-Port":   "8443",
	"X-Forwarded-Prefix": "/evil",
	"Forwarded":          `for=1.2.3.4;host=evil.example;proto=https`,
}

func TestRedirectURIIgnoresClientHeadersWithoutHops(t *testing.T) {
	e := newEnv(t)
	got, resp := e.startRedirectURI("", spoofHeaders)
	if want := e.broker.URL + "/oauth2/callback/alpha"; got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
	}
	if sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); strings.Contains(sc, "evil") || strings.Contains(sc, "Secure") {
		t.Errorf("cookie steered by headers: %s", sc)
	}
}

func TestRedirectURIThroughTrustedProxy(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.TrustedProxies = proxyfix.Config{XProto: 1, XHost: 1, XPrefix: 1, XFor: 1}
	}))
	cases := []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"proxy's values", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "auth.example.com", "X-Forwarded-Prefix": "/sso"},
			"https://auth.example.com/sso/oauth2/callback/alpha"},
		{"client value before the proxy's is not used", map[string]string{"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "evil.example, auth.example.com"},
			"https://auth.example.com/oauth2/callback/alpha"},
		{"malformed host is ignored", map[string]string{"X-Forwarded-Host": "evil.example/x@y"},
			e.broker.URL + "/oauth2/callback/alpha"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := e.startRedirectURI("", c.hdr)
			if got != c.want {
				t.Errorf("redirect_uri = %q, want %q", got, c.want)
			}
		})
	}
	// The prefix moves the cookies and the page's links too.
	_, resp := e.startRedirectURI("", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "auth.example.com", "X-Forwarded-Prefix": "/sso"})
	sc := pendingSetCookie(resp)
	for _, want := range []string{"__Secure-oidc_broker_login_", "Path=/sso/oauth2/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=600"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/sign_in?rd=/sso/app", nil)
	req.Header.Set("X-Forwarded-Prefix", "/sso")
	page, _ := newBrowser().Do(req)
	if b := body(page); !strings.Contains(b, `href="/sso/oauth2/start/alpha?rd=%2Fsso%2Fapp"`) {
		t.Errorf("sign-in links not under the prefix:\n%s", b)
	}
	req, _ = http.NewRequest(http.MethodGet, e.broker.URL+"/app/page", nil)
	req.Header.Set("X-Forwarded-Prefix", "/sso")
	resp, _ = newBrowser().Do(req)
	if loc := resp.Header.Get("Location"); loc != "/sso/oauth2/sign_in?rd=%2Fsso%2Fapp%2Fpage" {
		t.Errorf("unauthenticated redirect under a prefix: %q", loc)
	}
}

func TestPublicURLWinsOverHeaders(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.PublicURL = "https://sso.example.com/base"
		c.TrustedProxies = proxyfix.Config{XProto: 1, XHost: 1}
	}))
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/base/oauth2/start/alpha", nil)
	req.Header.Set("X-Forwarded-Host", "evil.example")
	resp, err := newBrowser().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if got := loc.Query().Get("redirect_uri"); got != "https://sso.example.com/base/oauth2/callback/alpha" {
		t.Errorf("redirect_uri = %q (status %d)", got, resp.StatusCode)
	}
}

func TestForceHTTPS(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.ForceHTTPS = true }))
	got, _ := e.startRedirectURI("", nil)
	if want := "https://" + strings.TrimPrefix(e.broker.URL, "http://") + "/oauth2/callback/alpha"; got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
	}
}

func TestAllowedHosts(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.AllowedHosts = []string{"127.0.0.1", ".example.com"}
		c.TrustedProxies = proxyfix.Config{XHost: 1}
	}))
	if _, resp := e.startRedirectURI("", nil); resp.StatusCode != http.StatusFound {
		t.Errorf("allowed host: %d", resp.StatusCode)
	}
	if got, resp := e.startRedirectURI("", map[string]string{"X-Forwarded-Host": "a.example.com"}); resp.StatusCode != http.StatusFound || got != "http://a.example.com/oauth2/callback/alpha" {
		t.Errorf("suffix host: %d %q", resp.StatusCode, got)
	}
	if _, resp := e.startRedirectURI("evil.example", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Host evil.example: %d, want 400", resp.StatusCode)
	}
	if _, resp := e.startRedirectURI("", map[string]string{"X-Forwarded-Host": "evil.example"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forwarded evil.example: %d, want 400", resp.StatusCode)
	}
	// A trailing dot names the same host, for allowed_hosts as for the
	// access rules and upstreams.
	for _, h := range []string{"a.example.com.", "A.EXAMPLE.com.:8080", "127.0.0.1"} {
		if !hostAllowed(compileHosts([]string{"127.0.0.1", ".example.com"}), h) {
			t.Errorf("%q not allowed", h)
		}
	}
	if !hostAllowed(compileHosts([]string{"app.example.com."}), "app.example.com") {
		t.Error("allowed_hosts app.example.com. refused app.example.com")
	}
	if hostAllowed(compileHosts([]string{".example.com"}), "badexample.com") {
		t.Error(".example.com matched badexample.com")
	}
}
