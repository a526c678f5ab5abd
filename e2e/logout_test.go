//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/oidc-broker/oidc-broker/demo"
)

// TestSignOutWithALargeIDTokenEndsTheIdPSession signs in, in headless Chromium, at npm
// oidc-provider as a user with 150 groups, whose ID token (some 7 KB) makes an end-session URL
// too long, and signs out through the broker. The provider refuses end_session requests
// without id_token_hint (as ORY Hydra and Okta do) and accepts them by POST; it serves HTTPS
// and the broker plain HTTP, so the two are cross-site and the POST carries the provider's
// session cookie only because it is SameSite=None, as in production. The broker's page must
// post the request, hint included, by itself (its script, under the page's CSP); the
// provider's confirmation ends its session. The proof: the next sign-in shows the
// provider's login form again, where a surviving IdP session would skip it and sign the
// user straight back in.
func TestSignOutWithALargeIDTokenEndsTheIdPSession(t *testing.T) {
	brokerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(interopFreePort(t)))
	app := httptest.NewServer(demo.NewApp())
	t.Cleanup(app.Close)

	groups := make([]string, 150)
	for i := range groups {
		groups[i] = fmt.Sprintf("cn=app-%03d-readers,ou=groups", i)
	}
	idp := interopIdP{
		id: "bigcorp", name: "BigCorp", login: "dora",
		account: map[string]any{"email": "dora@bigcorp.example", "email_verified": true, "groups": groups},
		client: nodeOPClient{ClientID: "broker-bigcorp", ClientSecret: rand.Text(), TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs:           []string{brokerURL + "/oauth2/callback/bigcorp"},
			PostLogoutRedirectURIs: []string{brokerURL + "/oauth2/signed_out/bigcorp"}},
		broker: "    token_endpoint_auth_method: client_secret_basic\n",
	}
	cert := newTestCert(t, t.TempDir())
	t.Setenv("SSL_CERT_FILE", cert.CertFile) // the broker (Go, on Linux) trusts the provider's certificate
	op := startNodeOP(t, idp.id, nodeOPConfig{
		CookiePrefix:                  idp.id,
		Claims:                        map[string][]string{"groups": {"groups"}},
		Clients:                       []nodeOPClient{idp.client},
		Accounts:                      map[string]map[string]any{idp.login: idp.account},
		EndSessionRequiresIDTokenHint: true,
		HTTPPostMethods:               true,
		TLS:                           &nodeOPTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile},
	})
	d := startInteropBroker(t, brokerURL, app.URL, []interopIdP{idp}, []*nodeOP{op})
	b := newBrowser(t)

	got := interopSignIn(b, d, idp, op)
	if n := len(strings.Split(got["X-Auth-Request-Groups"], ",")); n != len(groups) {
		t.Fatalf("the app received %d groups, want %d: the ID token is not the large one", n, len(groups))
	}

	idpSession := cookieValue(b, op.Issuer+"/", idp.id+"_session")
	if idpSession == "" {
		t.Fatalf("no %s_session cookie from oidc-provider after signing in", idp.id)
	}

	resp := b.click(`nav a[href="/oauth2/sign_out"]`)
	if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
		t.Fatalf("the Sign out link ended at %s (status %d), want %s", resp.URL, resp.Status, want)
	}
	b.waitVisible("#sign-out")
	// The broker answers with its end-session page, whose script posts the form at once;
	// the browser ends at the provider's confirmation, its URL without the token.
	resp = b.click("#sign-out")
	if resp.URL != d.URL+"/oauth2/sign_out" || resp.Status != http.StatusOK {
		t.Errorf("confirming the sign-out answered %s (status %d), want the broker's page that posts to the IdP", resp.URL, resp.Status)
	}
	waitForPage(b, op.Issuer+"/")
	confirm := b.location()
	if confirm != op.Issuer+"/session/end" {
		t.Errorf("after the broker's sign-out the browser is at %s, want oidc-provider's confirmation at %s/session/end (reached by POST)", confirm, op.Issuer)
	}
	if !strings.Contains(op.stderr.String(), "POST /session/end 200") {
		t.Errorf("oidc-provider did not accept a POST at /session/end:\n%s", op.stderr.String())
	}
	// The cross-site POST carried the session cookie: the provider did not start a new one.
	if got := cookieValue(b, op.Issuer+"/", idp.id+"_session"); got != idpSession {
		t.Errorf("oidc-provider's session cookie changed at /session/end (%q, was %q): the POST did not carry it", got, idpSession)
	}
	if run(b, "look for the confirmation button", chromedp.Evaluate[bool](
		`document.querySelector('button[name="logout"][value="yes"]') !== null`)) {
		resp = b.click(`button[name="logout"][value="yes"]`)
		if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
			t.Errorf("signing out at %s ended at %s (status %d), want %s", idp.id, resp.URL, resp.Status, want)
		}
		if text := b.text("main"); !strings.Contains(text, "You are signed out") {
			t.Errorf("after sign-out the page reads %q, want \"You are signed out\"", text)
		}
	} else {
		t.Errorf("oidc-provider shows no sign-out confirmation at %s: %q", confirm,
			run(b, "read the page", chromedp.Evaluate[string](`document.body.innerText`)))
	}
	if resp := b.navigate(d.URL + "/oauth2/userinfo"); resp.Status != http.StatusUnauthorized {
		t.Errorf("GET /oauth2/userinfo after sign-out: status %d, want 401", resp.Status)
	}

	// The IdP's session has ended: signing in again asks for the login name.
	interopOpenSelection(b, d)
	resp = b.click(interopChoice(idp))
	if !strings.HasPrefix(resp.URL, op.Issuer+"/interaction/") || resp.Status != http.StatusOK ||
		!run(b, "look for the login form", chromedp.Evaluate[bool](`document.querySelector('input[name="login"]') !== null`)) {
		t.Fatalf("signing in again ended at %s (status %d) without oidc-provider's login form: the IdP's session survived the sign-out", resp.URL, resp.Status)
	}
	interopCheckLogs(t, d, []string{idp.client.ClientSecret}, []*nodeOP{op})
}

// waitForPage waits until the tab shows a loaded document whose URL starts with prefix,
// after navigations that no action of the test started (a form that a script submits). A
// check that fails while a navigation replaces the document is retried.
func waitForPage(b *browser, prefix string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	check := chromedp.Evaluate[bool](fmt.Sprintf(`location.href.startsWith(%q) && document.readyState === "complete"`, prefix))
	for {
		if ok, err := chromedp.Run(ctx, check); err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("no page at %s… within %v; the browser is at %s", prefix, stepTimeout, b.location())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cookieValue returns the value of the browser's cookie name for url, or "".
func cookieValue(b *browser, url, name string) string {
	b.t.Helper()
	res := run(b, "read the cookies", chromedp.Action[*network.GetCookiesResult](
		func(ctx context.Context, t *chromedp.Target) (*network.GetCookiesResult, error) {
			r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
			return &r, err
		}))
	for _, c := range res.Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
