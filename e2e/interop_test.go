//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/oidc-broker/oidc-broker/demo"
)

// interopTitle is the heading of the broker's selection page in the interop tests.
const interopTitle = "Sign in to the interop app"

// interopIdP is one oidc-provider issuer in [TestInteropOidcProvider], and what the app must
// receive after signing in there.
type interopIdP struct {
	id, name string
	login    string         // typed at oidc-provider's login page; oidc-provider makes it the sub
	account  map[string]any // the claims oidc-provider holds for login
	client   nodeOPClient   // the broker's client there (secret and redirect URI filled in)
	broker   string         // extra YAML lines of the broker's provider entry
	// backchannel: the provider sends logout tokens to the broker (Back-Channel Logout),
	// and the round signs out at the provider too.
	backchannel bool
	// refresh: the provider issues refresh tokens and access tokens that last 31 s, so the
	// broker refreshes the login one second after it began.
	refresh bool

	wantHeaders  map[string]string // every X-Auth-Request-* header the app receives
	wantUserinfo map[string]any    // fields of the broker's /oauth2/userinfo JSON
}

// interopIdPs are two issuers with different claim shapes, client authentication, ID token
// algorithms and ways to the claims (userinfo endpoint, or the ID token alone).
var interopIdPs = []interopIdP{
	{
		id: "contoso", name: "Contoso", login: "alice", backchannel: true, refresh: true,
		account: map[string]any{
			"email":              "alice@contoso.example",
			"email_verified":     true,
			"name":               "Alice Anders",
			"preferred_username": "alice",
			"groups":             []string{"staff", "ops"},
		},
		client: nodeOPClient{TokenEndpointAuthMethod: "client_secret_basic"}, // RS256
		broker: `    token_endpoint_auth_method: client_secret_basic
    userinfo: always
    require_iss_parameter: true
`,
		wantHeaders: map[string]string{
			"X-Auth-Request-User":               "contoso:alice",
			"X-Auth-Request-Provider":           "contoso",
			"X-Auth-Request-Email":              "alice@contoso.example",
			"X-Auth-Request-Preferred-Username": "alice",
			"X-Auth-Request-Groups":             "staff,ops",
			"X-Auth-Request-Name":               "Alice Anders",
		},
		wantUserinfo: map[string]any{
			"user": "contoso:alice", "provider": "contoso", "sub": "alice",
			"email": "alice@contoso.example", "email_verified": true,
			"name": "Alice Anders", "preferred_username": "alice",
			"groups": []any{"staff", "ops"},
		},
	},
	{
		id: "initech", name: "Initech", login: "initech|65f1c2d3e4b5a697", // the sub: opaque, with a "|"
		account: map[string]any{
			"email":              "peter@initech.example",
			"email_verified":     false,
			"name":               "Péter Gibbons",
			"preferred_username": "péter",
			"groups":             "tps-reports printers", // a space-separated string
		},
		client: nodeOPClient{TokenEndpointAuthMethod: "client_secret_post", IDTokenSignedResponseAlg: "ES256"},
		broker: `    token_endpoint_auth_method: client_secret_post
    userinfo: never
    id_token_signing_algs: [ES256]
`,
		wantHeaders: map[string]string{ // no email: Initech has not verified it
			"X-Auth-Request-User":               "initech:initech|65f1c2d3e4b5a697",
			"X-Auth-Request-Provider":           "initech",
			"X-Auth-Request-Preferred-Username": "p%C3%A9ter",
			"X-Auth-Request-Groups":             "tps-reports,printers",
			"X-Auth-Request-Name":               "P%C3%A9ter Gibbons",
		},
		wantUserinfo: map[string]any{
			"user": "initech:initech|65f1c2d3e4b5a697", "provider": "initech", "sub": "initech|65f1c2d3e4b5a697",
			"email": "peter@initech.example", "email_verified": false,
			"name": "Péter Gibbons", "preferred_username": "péter",
			"groups": []any{"tps-reports", "printers"},
		},
	},
}

// TestInteropOidcProvider runs two issuers on npm oidc-provider (an OpenID Certified OP, with
// PKCE required and only the registered client authentication accepted) and, in one headless
// Chromium, cancels a sign-in at the first, then signs in through the broker's selection page
// to each in turn, walks oidc-provider's login and consent pages, checks the normalized
// identity that the app and /oauth2/userinfo see, and signs out through the broker, which
// sends the browser on to oidc-provider's end_session page (RP-Initiated Logout) and back.
// At Contoso, which sends back-channel logout tokens, the user first signs out at the IdP
// directly, which must end the broker's session, and signs in again. The broker's logs must
// hold no client secret, code or token.
func TestInteropOidcProvider(t *testing.T) {
	brokerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(interopFreePort(t)))
	app := httptest.NewServer(demo.NewApp())
	t.Cleanup(app.Close)

	idps := slices.Clone(interopIdPs)
	ops := make([]*nodeOP, len(idps))
	var secrets []string
	for i := range idps {
		idp := &idps[i]
		idp.client.ClientID = "broker-" + idp.id
		idp.client.ClientSecret = rand.Text()
		idp.client.RedirectURIs = []string{brokerURL + "/oauth2/callback/" + idp.id}
		idp.client.PostLogoutRedirectURIs = []string{brokerURL + "/oauth2/signed_out/" + idp.id}
		var ttl int
		if idp.refresh {
			idp.client.GrantTypes = []string{"authorization_code", "refresh_token"}
			ttl = 31
		}
		if idp.backchannel {
			idp.client.BackchannelLogoutURI = brokerURL + "/oauth2/backchannel_logout/" + idp.id
			idp.client.BackchannelLogoutSessionRequired = true
		}
		secrets = append(secrets, idp.client.ClientSecret)
		ops[i] = startNodeOP(t, idp.id, nodeOPConfig{
			CookiePrefix: idp.id,
			Claims:       map[string][]string{"groups": {"groups"}},
			// Only the registered method works, so the broker must use the configured one.
			TokenEndpointAuthMethods: []string{idp.client.TokenEndpointAuthMethod},
			Clients:                  []nodeOPClient{idp.client},
			Accounts:                 map[string]map[string]any{idp.login: idp.account},
			BackchannelLogout:        idp.backchannel,
			AccessTokenTTL:           ttl,
			RefreshTokens:            idp.refresh,
		})
	}
	d := startInteropBroker(t, brokerURL, app.URL, idps, ops)
	b := newBrowser(t)

	if !t.Run("cancel", func(t *testing.T) { interopCancel(b.in(t), d, idps[0], ops[0]) }) {
		return
	}
	for i, idp := range idps {
		// One browser for every round: each starts from the previous one's end.
		ok := t.Run(idp.id, func(t *testing.T) {
			b := b.in(t)
			got := interopSignIn(b, d, idp, ops[i])
			if !maps.Equal(got, idp.wantHeaders) {
				t.Errorf("the app received\n%s\nwant\n%s", formatHeaders(got), formatHeaders(idp.wantHeaders))
			}
			interopCheckCookies(b, d, idp)
			interopCheckUserinfo(b, d, idp.wantUserinfo)
			if idp.refresh {
				interopRefresh(b, d, idp)
			}
			if idp.backchannel {
				interopSignOutAtIdP(b, d, idp, ops[i])
				interopSignIn(b, d, idp, ops[i])
			}
			interopSignOut(b, d, idp, ops[i])
		})
		if !ok {
			break // the next round would start from an unknown state
		}
	}

	interopCheckLogs(t, d, secrets, ops)
}

// interopCheckLogs fails the test if the broker's logs hold a JWT (such as an ID token), one
// of the client secrets, or any code or token the providers issued.
func interopCheckLogs(t *testing.T, d *demoBroker, secrets []string, ops []*nodeOP) {
	t.Helper()
	leaks := map[string]string{"eyJ": "a JWT"}
	for _, s := range secrets {
		leaks[s] = "a client secret"
	}
	for _, op := range ops {
		issued := op.issued()
		if len(issued) == 0 && !t.Failed() {
			t.Errorf("oidc-provider %s reported no codes or tokens: the leak check cannot see them", op.name)
		}
		for _, v := range issued {
			leaks[v] = "a code or token issued by " + op.name
		}
	}
	logs := d.stderr.String()
	for s, what := range leaks {
		if strings.Contains(logs, s) {
			t.Errorf("the broker's logs contain %s (%.8s…)", what, s)
		}
	}
}

// interopFreePort returns a free TCP port on 127.0.0.1, for the broker, which must know its
// public URL before the IdPs (that register its redirect URIs) and it start.
func interopFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startInteropBroker writes the broker's configuration (the secrets as ${VAR}, given in its
// environment) and runs "oidc-broker serve" at brokerURL until /healthz answers. It stops the
// broker when the test ends (see [demoBroker.stop]).
func startInteropBroker(t *testing.T, brokerURL, upstream string, idps []interopIdP, ops []*nodeOP) *demoBroker {
	t.Helper()
	var conf strings.Builder
	fmt.Fprintf(&conf, `listen: %s
public_url: %s
upstream: %s
session:
  cookie_name: interop_broker
selection:
  title: %s
log:
  level: debug
providers:
`, strings.TrimPrefix(brokerURL, "http://"), brokerURL, upstream, interopTitle)
	env := os.Environ()
	for i, idp := range idps {
		secretVar := strings.ToUpper(idp.id) + "_CLIENT_SECRET"
		fmt.Fprintf(&conf, `  - id: %s
    name: %s
    issuer: %s
    client_id: %s
    client_secret: ${%s}
    scopes: [openid, email, profile, groups]
%s`, idp.id, idp.name, ops[i].Issuer, idp.client.ClientID, secretVar, idp.broker)
		env = append(env, secretVar+"="+idp.client.ClientSecret)
	}
	path := filepath.Join(t.TempDir(), "broker.yaml")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	d := &demoBroker{
		URL:    brokerURL,
		cmd:    exec.Command(brokerBinary, "serve", "--config", path),
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	d.cmd.Env = env
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", brokerBinary, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if resp, err := client.Get(brokerURL + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.exited:
			d.reported = true
			t.Fatalf("oidc-broker serve exited before /healthz answered: %v\nconfiguration:\n%s", d.waitErr, conf.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("oidc-broker serve: no 200 from %s/healthz within %v", brokerURL, startTimeout)
		}
	}
}

// interopSignIn walks the flow from the broker's root: selection page, oidc-provider's login
// page and consent page, back to the app. It returns the identity headers the app shows.
func interopSignIn(b *browser, d *demoBroker, idp interopIdP, op *nodeOP) map[string]string {
	b.t.Helper()
	interopOpenSelection(b, d)
	choice := interopChoice(idp)
	if text := b.text(choice); !strings.Contains(text, idp.name) {
		b.t.Errorf("the selection entry for %s reads %q, want it to name %q", idp.id, text, idp.name)
	}

	resp := b.click(choice)
	if !strings.HasPrefix(resp.URL, op.Issuer+"/interaction/") || resp.Status != http.StatusOK {
		b.t.Fatalf("choosing %s ended at %s (status %d), want oidc-provider's login page under %s/interaction/", idp.id, resp.URL, resp.Status, op.Issuer)
	}
	b.typeInto(`input[name="login"]`, idp.login)
	b.typeInto(`input[name="password"]`, "any password")
	resp = b.click(`form button[type="submit"]`)
	if !strings.HasPrefix(resp.URL, op.Issuer+"/interaction/") || resp.Status != http.StatusOK {
		b.t.Fatalf("signing in at %s ended at %s (status %d), want oidc-provider's consent page", idp.id, resp.URL, resp.Status)
	}
	// The consent page lists the scopes the broker asked for (openid aside).
	consent := b.text(".login-card")
	for _, scope := range []string{"email", "profile", "groups"} {
		if !strings.Contains(consent, scope) {
			b.t.Errorf("%s's consent page does not list the scope %q:\n%s", idp.id, scope, consent)
		}
	}

	resp = b.click(`form button[type="submit"]`)
	if want := d.URL + "/"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("consenting at %s ended at %s (status %d), want the app at %s", idp.id, resp.URL, resp.Status, want)
	}
	if title := b.title(); title != demo.AppTitle {
		b.t.Fatalf("page title after sign-in %q, want %q", title, demo.AppTitle)
	}
	return appHeaders(b)
}

// interopCancel chooses the IdP and cancels at its login page: oidc-provider redirects back
// with error=access_denied, which must end in a client error page without a session.
func interopCancel(b *browser, d *demoBroker, idp interopIdP, op *nodeOP) {
	b.t.Helper()
	interopOpenSelection(b, d)
	resp := b.click(interopChoice(idp))
	if !strings.HasPrefix(resp.URL, op.Issuer+"/interaction/") {
		b.t.Fatalf("choosing %s ended at %s, want oidc-provider's login page", idp.id, resp.URL)
	}
	resp = b.click(`.login-help a[href$="/abort"]`)
	if want := d.URL + "/oauth2/callback/" + idp.id + "?"; !strings.HasPrefix(resp.URL, want) ||
		!strings.Contains(resp.URL, "error=access_denied") || resp.Status < 400 || resp.Status > 499 {
		b.t.Errorf("cancelling at %s ended at %s (status %d), want a 4xx page at %serror=access_denied…", idp.id, resp.URL, resp.Status, want)
	}
	if resp := b.navigate(d.URL + "/oauth2/userinfo"); resp.Status != http.StatusUnauthorized {
		b.t.Errorf("GET /oauth2/userinfo after a cancelled sign-in: status %d, want 401", resp.Status)
	}
}

// interopChoice is a CSS selector for the IdP's entry on the selection page, whether a link
// or a form's button.
func interopChoice(idp interopIdP) string {
	return fmt.Sprintf(`a[href*="/oauth2/start/%[1]s"], form[action*="/oauth2/start/%[1]s"] button`, idp.id)
}

// interopOpenSelection loads the broker's root and checks that a visitor without a session
// lands on the selection page.
func interopOpenSelection(b *browser, d *demoBroker) {
	b.t.Helper()
	resp := b.navigate(d.URL + "/")
	if want := d.URL + "/oauth2/sign_in?rd=%2F"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("GET / without a session ended at %s (status %d), want the selection page %s", resp.URL, resp.Status, want)
	}
	if h := b.text("h1"); h != interopTitle {
		b.t.Fatalf("selection page heading %q, want %q", h, interopTitle)
	}
}

// interopCheckCookies checks the cookies the browser holds for 127.0.0.1, which the broker
// and the IdPs share (cookies ignore the port): the broker's session cookie under its
// configured name, HttpOnly and SameSite=Lax, and the IdP's session under its own name.
func interopCheckCookies(b *browser, d *demoBroker, idp interopIdP) {
	b.t.Helper()
	res := run(b, "read the cookies", chromedp.Action[*network.GetCookiesResult](
		func(ctx context.Context, t *chromedp.Target) (*network.GetCookiesResult, error) {
			r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{d.URL + "/"}})
			return &r, err
		}))
	byName := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		byName[c.Name] = c
	}
	if c := byName["interop_broker"]; c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Secure {
		b.t.Errorf("the broker's session cookie interop_broker: %+v, want HttpOnly, SameSite=Lax, not Secure over http", c)
	}
	if c := byName["oidc_broker"]; c != nil {
		b.t.Errorf("a cookie with the default name oidc_broker is set despite session.cookie_name")
	}
	if byName[idp.id+"_session"] == nil {
		b.t.Errorf("no cookie %s_session from oidc-provider; the browser holds %v", idp.id, slices.Sorted(maps.Keys(byName)))
	}
}

// interopCheckUserinfo loads the broker's /oauth2/userinfo in the browser and compares the
// fields of want; then it returns to the app.
func interopCheckUserinfo(b *browser, d *demoBroker, want map[string]any) {
	b.t.Helper()
	resp := b.navigate(d.URL + "/oauth2/userinfo")
	body := run(b, "read the userinfo body", chromedp.Evaluate[string](`document.body.innerText`))
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.Status != http.StatusOK {
		b.t.Fatalf("GET /oauth2/userinfo: status %d, body %q (%v)", resp.Status, body, err)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, w := fmt.Sprint(got[k]), fmt.Sprint(want[k]); g != w {
			b.t.Errorf("userinfo %s: %s, want %s", k, g, w)
		}
	}
	if resp := b.navigate(d.URL + "/"); resp.URL != d.URL+"/" {
		b.t.Fatalf("back to the app: ended at %s", resp.URL)
	}
}

// interopRefresh waits until the login's access token is due for renewal and loads the app:
// the broker refreshes the login at oidc-provider (whose refreshed ID token repeats the
// original nonce) and the app still receives the same identity.
func interopRefresh(b *browser, d *demoBroker, idp interopIdP) {
	b.t.Helper()
	time.Sleep(1500 * time.Millisecond) // 31 s tokens are renewed 30 s early
	if resp := b.navigate(d.URL + "/"); resp.URL != d.URL+"/" || resp.Status != http.StatusOK {
		b.t.Fatalf("the app after the token expired: %s (status %d)", resp.URL, resp.Status)
	}
	if got := appHeaders(b); !maps.Equal(got, idp.wantHeaders) {
		b.t.Errorf("after the refresh the app received\n%s\nwant\n%s", formatHeaders(got), formatHeaders(idp.wantHeaders))
	}
	if logs, want := d.stderr.String(), `msg="session refreshed" provider=`+idp.id; !strings.Contains(logs, want) {
		b.t.Errorf("the broker did not log %s:\n%s", want, logs)
	}
}

// interopSignOut signs out from the app page through the broker's confirmation page, which
// continues at oidc-provider's end_session page (RP-Initiated Logout): confirming there ends
// the IdP's session too and comes back to the broker's signed-out page. The broker's session
// and the IdP's are gone.
func interopSignOut(b *browser, d *demoBroker, idp interopIdP, op *nodeOP) {
	b.t.Helper()
	resp := b.click(`nav a[href="/oauth2/sign_out"]`)
	if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("the Sign out link ended at %s (status %d), want %s", resp.URL, resp.Status, want)
	}
	b.waitVisible("#sign-out")
	if text, want := b.text("main"), "Signing out also ends your session at "+idp.name; !strings.Contains(text, want) {
		b.t.Errorf("the sign-out page reads %q, want it to say %q", text, want)
	}
	resp = b.click("#sign-out")
	if !strings.HasPrefix(resp.URL, op.Issuer+"/session/end?") || resp.Status != http.StatusOK {
		b.t.Fatalf("confirming the sign-out ended at %s (status %d), want oidc-provider's end_session page", resp.URL, resp.Status)
	}
	if q := interopQuery(b, resp.URL); q.Get("id_token_hint") == "" || q.Get("client_id") != idp.client.ClientID ||
		q.Get("post_logout_redirect_uri") != d.URL+"/oauth2/signed_out/"+idp.id || q.Get("state") == "" {
		b.t.Errorf("the end_session request lacks a parameter: %v", q)
	}
	resp = b.click(`button[name="logout"][value="yes"]`)
	if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("signing out at %s ended at %s (status %d), want %s", idp.id, resp.URL, resp.Status, want)
	}
	if text := b.text("main"); !strings.Contains(text, "You are signed out") {
		b.t.Fatalf("after sign-out the page reads %q, want \"You are signed out\"", text)
	}
	if resp := b.navigate(d.URL + "/oauth2/userinfo"); resp.Status != http.StatusUnauthorized {
		b.t.Errorf("GET /oauth2/userinfo after sign-out: status %d, want 401", resp.Status)
	}
	if names := interopCookieNames(b, d); slices.Contains(names, idp.id+"_session") {
		b.t.Errorf("the IdP's session cookie %s_session survived the sign-out: %v", idp.id, names)
	}
	interopOpenSelection(b, d)
}

// interopSignOutAtIdP signs out at oidc-provider itself (its end_session page, not through
// the broker): oidc-provider posts a logout token to the broker's back-channel endpoint, and
// the broker's session of that IdP session must end.
func interopSignOutAtIdP(b *browser, d *demoBroker, idp interopIdP, op *nodeOP) {
	b.t.Helper()
	resp := b.navigate(op.Issuer + "/session/end")
	if resp.Status != http.StatusOK {
		b.t.Fatalf("oidc-provider's end_session page: status %d", resp.Status)
	}
	resp = b.click(`button[name="logout"][value="yes"]`)
	if want := op.Issuer + "/session/end/success"; !strings.HasPrefix(resp.URL, want) || resp.Status != http.StatusOK {
		b.t.Fatalf("signing out at %s ended at %s (status %d), want %s", idp.id, resp.URL, resp.Status, want)
	}
	if !strings.Contains(op.stderr.String(), "backchannel.success "+idp.client.ClientID) {
		b.t.Errorf("oidc-provider did not deliver the logout token:\n%s", op.stderr.String())
	}
	if resp := b.navigate(d.URL + "/oauth2/userinfo"); resp.Status != http.StatusUnauthorized {
		b.t.Errorf("GET /oauth2/userinfo after signing out at the IdP: status %d, want 401", resp.Status)
	}
	if logs, want := d.stderr.String(), `msg="back-channel logout" provider=`+idp.id+` by=sid`; !strings.Contains(logs, want) {
		b.t.Errorf("the broker did not log %s:\n%s", want, logs)
	}
}

// interopQuery parses the query of a URL the browser reached.
func interopQuery(b *browser, raw string) url.Values {
	b.t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		b.t.Fatalf("parse %q: %v", raw, err)
	}
	return u.Query()
}

// interopCookieNames lists the cookies the browser holds for the broker's URL (and so, by
// host, for the IdPs on 127.0.0.1).
func interopCookieNames(b *browser, d *demoBroker) []string {
	b.t.Helper()
	res := run(b, "read the cookies", chromedp.Action[*network.GetCookiesResult](
		func(ctx context.Context, t *chromedp.Target) (*network.GetCookiesResult, error) {
			r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{d.URL + "/"}})
			return &r, err
		}))
	var names []string
	for _, c := range res.Cookies {
		names = append(names, c.Name)
	}
	return names
}
