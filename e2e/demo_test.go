//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// What "oidc-broker demo" shows; see cmd/oidc-broker/demo.go and the demo package.
const (
	selectionHeading = "Sign in to the demo app"
	appTitle         = "Demo app behind oidc-broker"
	demoPassword     = "demo"
)

// demoIdPNames are the display names of the demo IdPs by provider id.
var demoIdPNames = map[string]string{
	"acme":   "Acme (demo IdP)",
	"globex": "Globex (demo IdP)", // sends RFC 9207 iss in the authorization response
}

func TestDemoSignInThroughBothIdPs(t *testing.T) {
	d := startDemo(t)
	checkPlainHTTP(t, d)
	b := newBrowser(t)

	for _, tt := range []struct {
		idp, user string
		want      map[string]string // every X-Auth-Request-* header the app receives
	}{
		{"acme", "alice", map[string]string{
			"X-Auth-Request-User":               "acme:acme-alice",
			"X-Auth-Request-Provider":           "acme",
			"X-Auth-Request-Email":              "alice@acme.example",
			"X-Auth-Request-Preferred-Username": "alice",
			"X-Auth-Request-Groups":             "admins,engineering",
			"X-Auth-Request-Name":               "Alice Anderson",
		}},
		{"globex", "bob", map[string]string{
			"X-Auth-Request-User":               "globex:globex-bob",
			"X-Auth-Request-Provider":           "globex",
			"X-Auth-Request-Email":              "bob@globex.example",
			"X-Auth-Request-Preferred-Username": "bob",
			"X-Auth-Request-Groups":             "engineering",
			"X-Auth-Request-Name":               "Bob Brown",
		}},
	} {
		// One browser for both rounds: the second sign-in starts from the first one's
		// sign-out, so a session that survived it would show up here.
		ok := t.Run(tt.idp+"/"+tt.user, func(t *testing.T) {
			b := b.in(t)
			got := signIn(b, d, tt.idp, tt.user)
			if !maps.Equal(got, tt.want) {
				t.Errorf("the app received\n%s\nwant\n%s", formatHeaders(got), formatHeaders(tt.want))
			}
			checkUserinfo(b, d, tt.want["X-Auth-Request-User"])
			signOut(b, d)
		})
		if !ok {
			break // the next round would start from an unknown state
		}
	}
}

// TestDemoUnverifiedEmailNotRelayed signs in as carol, whose email the IdP has not verified:
// the app must not receive it.
func TestDemoUnverifiedEmailNotRelayed(t *testing.T) {
	d := startDemo(t)
	b := newBrowser(t)

	got := signIn(b, d, "acme", "carol")
	want := map[string]string{
		"X-Auth-Request-User":               "acme:acme-carol",
		"X-Auth-Request-Provider":           "acme",
		"X-Auth-Request-Preferred-Username": "carol",
		"X-Auth-Request-Name":               "Carol Clark",
	}
	if !maps.Equal(got, want) {
		t.Errorf("the app received\n%s\nwant\n%s (no X-Auth-Request-Email: carol's email is not verified; no groups)",
			formatHeaders(got), formatHeaders(want))
	}
	checkUserinfo(b, d, "acme:acme-carol")
	signOut(b, d)
}

// checkPlainHTTP checks, without a browser, what a client without a session gets.
func checkPlainHTTP(t *testing.T, d *demoBroker) {
	t.Helper()
	for path, want := range map[string]int{
		"/healthz":     http.StatusOK,
		"/oauth2/auth": http.StatusUnauthorized,
	} {
		if resp := d.get(t, path); resp.StatusCode != want {
			t.Errorf("GET %s without a cookie: status %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// openSelection loads the broker's root and checks that a visitor without a session lands on
// the IdP selection page.
func openSelection(b *browser, d *demoBroker) {
	b.t.Helper()
	resp := b.navigate(d.URL + "/")
	if want := d.URL + "/oauth2/sign_in?rd=%2F"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("GET / without a session ended at %s (status %d), want the selection page %s", resp.URL, resp.Status, want)
	}
	if h := b.text("main h1"); h != selectionHeading {
		b.t.Fatalf("selection page heading %q, want %q", h, selectionHeading)
	}
}

// signIn walks the whole flow in the browser from the broker's root: selection page, the
// IdP's login form, back to the app. It returns the identity headers the app shows.
func signIn(b *browser, d *demoBroker, idp, user string) map[string]string {
	b.t.Helper()
	openSelection(b, d)
	if link, want := b.text("#idp-"+idp), "Sign in with "+demoIdPNames[idp]; link != want {
		b.t.Errorf("link #idp-%s reads %q, want %q", idp, link, want)
	}

	resp := b.click("#idp-" + idp)
	if !strings.Contains(resp.URL, "/login?authRequestID=") || resp.Status != http.StatusOK {
		b.t.Fatalf("the %s link ended at %s (status %d), want the IdP's login page", idp, resp.URL, resp.Status)
	}
	if h, want := b.text("main h1"), "Sign in to "+demoIdPNames[idp]; h != want {
		b.t.Fatalf("IdP login page heading %q, want %q", h, want)
	}
	b.typeInto("#username", user)
	b.typeInto("#password", demoPassword)

	resp = b.click(`form button[type="submit"]`)
	if want := d.URL + "/"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("signing in as %s at %s ended at %s (status %d), want the app at %s", user, idp, resp.URL, resp.Status, want)
	}
	if title := b.title(); title != appTitle {
		b.t.Fatalf("page title after sign-in %q, want %q", title, appTitle)
	}
	return appHeaders(b)
}

// appHeaders reads the identity headers from the demo app's table (see demo/app.go).
func appHeaders(b *browser) map[string]string {
	b.t.Helper()
	b.waitVisible(`nav[aria-label="Account"]`)
	return run(b, "read the app's header table", chromedp.Evaluate[map[string]string](`
		Object.fromEntries(Array.from(document.querySelectorAll("main table tbody tr"),
			(tr) => [tr.cells[0].textContent, tr.cells[1].textContent]))`))
}

// checkUserinfo loads /oauth2/userinfo in the browser (with its session cookie) and checks
// the user it names; then it returns to the app.
func checkUserinfo(b *browser, d *demoBroker, wantUser string) {
	b.t.Helper()
	resp := b.navigate(d.URL + "/oauth2/userinfo")
	body := run(b, "read the userinfo body", chromedp.Evaluate[string](`document.body.innerText`))
	var info struct {
		User     string `json:"user"`
		Provider string `json:"provider"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || resp.Status != http.StatusOK {
		b.t.Fatalf("GET /oauth2/userinfo: status %d, body %q (%v)", resp.Status, body, err)
	}
	if info.User != wantUser || !strings.HasPrefix(wantUser, info.Provider+":") {
		b.t.Errorf("userinfo: user %q provider %q, want user %q", info.User, info.Provider, wantUser)
	}
	if resp := b.navigate(d.URL + "/"); resp.URL != d.URL+"/" {
		b.t.Fatalf("back to the app: ended at %s", resp.URL)
	}
}

// signOut signs out from the app page through the confirmation page, and checks that the
// session is gone: the signed-out page, 401 from userinfo, and the selection page for /.
func signOut(b *browser, d *demoBroker) {
	b.t.Helper()
	resp := b.click(`nav a[href="/oauth2/sign_out"]`)
	if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("the Sign out link ended at %s (status %d), want %s", resp.URL, resp.Status, want)
	}
	b.waitVisible("#sign-out")

	resp = b.click("#sign-out")
	if want := d.URL + "/oauth2/sign_out"; resp.URL != want || resp.Status != http.StatusOK {
		b.t.Fatalf("confirming the sign-out ended at %s (status %d), want %s", resp.URL, resp.Status, want)
	}
	if text := b.text("main"); !strings.Contains(text, "You are signed out.") {
		b.t.Fatalf("after sign-out the page reads %q, want \"You are signed out.\"", text)
	}

	if resp := b.navigate(d.URL + "/oauth2/userinfo"); resp.Status != http.StatusUnauthorized {
		b.t.Errorf("GET /oauth2/userinfo after sign-out: status %d, want 401", resp.Status)
	}
	openSelection(b, d)
}

// formatHeaders lists headers one per line, sorted, for failure messages.
func formatHeaders(h map[string]string) string {
	var lines []string
	for _, name := range slices.Sorted(maps.Keys(h)) {
		lines = append(lines, fmt.Sprintf("  %s: %s", name, h[name]))
	}
	if lines == nil {
		return "  (none)"
	}
	return strings.Join(lines, "\n")
}

// TestDemoShowsTheRules: the demo's app links to a public page (open without signing in) and
// to /admins/, which bob may not open: he gets the broker's 403 page, naming him.
func TestDemoShowsTheRules(t *testing.T) {
	d := startDemo(t)
	if resp := d.get(t, "/public/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /public/ without a session: status %d, want 200", resp.StatusCode)
	}
	b := newBrowser(t)
	signIn(b, d, "acme", "bob")
	resp := b.click("#link-admins")
	if want := d.URL + "/admins/"; resp.URL != want || resp.Status != http.StatusForbidden {
		t.Fatalf("bob on the app's admins link ended at %s (status %d), want the 403 of %s", resp.URL, resp.Status, want)
	}
	if who := b.text("#who-user"); who != "bob" {
		t.Errorf("the 403 names %q, want bob", who)
	}
	b.navigate(d.URL + "/")
	resp = b.click("#link-public")
	if want := d.URL + "/public/"; resp.URL != want || resp.Status != http.StatusOK {
		t.Errorf("the app's public link ended at %s (status %d)", resp.URL, resp.Status)
	}
}
