//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// viewports are the widths the selection page is looked at: a desktop and the narrowest
// phone layout WCAG asks for (320 CSS pixels, reflow without horizontal scrolling).
var viewports = []struct{ width, height int64 }{{1280, 900}, {320, 640}}

// TestSelectionPageKeyboard looks at the demo's selection page at both widths (the
// screenshots are kept in the artifact directory whatever the outcome), then signs in with
// the keyboard alone: Tab to the first provider, Enter, type into the IdP's form, Enter.
func TestSelectionPageKeyboard(t *testing.T) {
	d := startDemo(t)
	b := newBrowser(t)

	resp := b.navigate(d.URL + "/oauth2/sign_in?rd=%2F")
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /oauth2/sign_in: status %d", resp.Status)
	}
	if lang := run(b, "read <html lang>", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
		t.Errorf("<html lang=%q>, want en", lang)
	}
	for _, vp := range viewports {
		checkLayout(b, vp.width, vp.height)
		saveScreenshot(b, fmt.Sprintf("%dpx", vp.width))
	}

	b.do("back to the desktop width", chromedp.EmulateViewport(1280, 900))
	b.navigate(d.URL + "/oauth2/sign_in?rd=%2F")
	focused := tabTo(b, "idp-acme", 10)
	if outline := run(b, "read the focus outline", chromedp.Evaluate[string](
		`(s => s.outlineStyle + " " + s.outlineWidth)(getComputedStyle(document.activeElement))`)); outline != "solid 3px" {
		t.Errorf("the focused %s has outline %q, want a visible \"solid 3px\"", focused, outline)
	}
	saveScreenshot(b, "focus")

	resp = b.loads("press Enter on the focused provider", chromedp.KeyEvent(kb.Enter))
	if !strings.Contains(resp.URL, "/login?authRequestID=") || resp.Status != http.StatusOK {
		t.Fatalf("Enter on #idp-acme ended at %s (status %d), want the IdP's login page", resp.URL, resp.Status)
	}
	b.typeInto("#username", "alice")
	resp = b.loads("type the password and press Enter", chromedp.SendKeys(chromedp.CSS("#password"), demoPassword+kb.Enter))
	if want := d.URL + "/"; resp.URL != want || resp.Status != http.StatusOK {
		t.Fatalf("signing in by keyboard ended at %s (status %d), want the app at %s", resp.URL, resp.Status, want)
	}
	b.waitVisible("main table")
	if page := b.text("main"); !strings.Contains(page, "acme:acme-alice") {
		t.Errorf("the app does not show the identity acme:acme-alice:\n%s", page)
	}
}

// TestSelectionPageGerman asks for German and gets it.
func TestSelectionPageGerman(t *testing.T) {
	d := startDemo(t)
	b := newBrowser(t)
	b.do("ask for German", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"}})
		return err
	}))
	b.navigate(d.URL + "/oauth2/sign_in?rd=%2F")
	if got := b.text("#idp-acme"); got != "Anmelden mit Acme (demo IdP)" {
		t.Errorf("#idp-acme reads %q in German", got)
	}
	if lang := run(b, "read <html lang>", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "de" {
		t.Errorf("<html lang=%q>, want de", lang)
	}
}

// TestSelectionPageList runs "oidc-broker serve" with a dozen providers in groups, a logo,
// icons, domains and colours: the searchable list. It checks the server-side search without
// JavaScript's help, the live filter with it, the layout at both widths, and home-realm
// discovery.
func TestSelectionPageList(t *testing.T) {
	dir := t.TempDir()
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20"><circle cx="10" cy="10" r="9" fill="%s"/></svg>`
	for name, colour := range map[string]string{"blue.svg": "#0b57d0", "green.svg": "#137333"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf(svg, colour)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listen: 127.0.0.1:0\nselection:\n  title: Sign in to Example Corp\n  logo: %s\n", filepath.Join(dir, "blue.svg"))
	conf.WriteString("  colors: {primary: \"#5b2a86\", background: \"#fbfaf7\", text: \"#1d1b20\"}\n")
	conf.WriteString("  footer_links: [{text: Privacy, url: \"https://example.com/privacy\"}, {text: Help, url: /help}]\nproviders:\n")
	for i, name := range []string{"Acme Corporation", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
		"Cyberdyne Systems", "Soylent", "Tyrell Corporation With A Very Long Name GmbH & Co. KG", "Hooli", "Vandelay Industries", "Wonka"} {
		fmt.Fprintf(&conf, "  - {id: t%d, name: %q, group: %q, domains: [t%d.example], issuer: \"http://127.0.0.1:1/t%d\", client_id: x, client_secret: y, icon: %q}\n",
			i, name, []string{"Europe", "Americas", "Asia-Pacific"}[i%3], i, i, filepath.Join(dir, []string{"blue.svg", "green.svg"}[i%2]))
	}
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	serve, _ := startServe(t, path)
	url := serve.URL
	b := newBrowser(t)

	b.navigate(url + "/oauth2/sign_in?rd=%2F")
	b.waitVisible("#q")
	for _, vp := range viewports {
		checkLayout(b, vp.width, vp.height)
		saveScreenshot(b, fmt.Sprintf("%dpx", vp.width))
	}
	b.do("back to the desktop width", chromedp.EmulateViewport(1280, 900))

	// Live filtering (the page's script): typing hides what does not match.
	b.typeInto("#q", "corp")
	time.Sleep(300 * time.Millisecond) // the filter waits for a pause in typing
	if n := visibleRows(b); n != 2 {
		t.Errorf("live filter for \"corp\" shows %d providers, want 2", n)
	}
	if got := b.text("#match-count"); got != "2 of 12 shown." {
		t.Errorf("live count reads %q", got)
	}
	saveScreenshot(b, "live-search")

	// Enter submits the search to the server: the same result, without the script.
	b.loads("submit the search with Enter", chromedp.SendKeys(chromedp.CSS("#q"), kb.Enter))
	if n := visibleRows(b); n != 2 || !strings.Contains(b.text("#match-count"), "Showing 2 of 12") {
		t.Errorf("server-side search: %d rows, count %q", n, b.text("#match-count"))
	}

	// Home-realm discovery: an email domain leads straight to its provider (which is down
	// here, so the browser comes back with a notice instead of reaching an IdP).
	b.navigate(url + "/oauth2/sign_in?rd=%2F")
	b.typeInto("#login", "alice@nowhere.example")
	b.loads("submit the email with Enter", chromedp.SendKeys(chromedp.CSS("#login"), kb.Enter))
	if got := b.text(".notice"); !strings.Contains(got, "“nowhere.example”") {
		t.Errorf("unknown domain notice %q", got)
	}
	saveScreenshot(b, "unknown-domain")
}

// checkLayout sets the viewport and checks that nothing scrolls sideways.
func checkLayout(b *browser, width, height int64) {
	b.t.Helper()
	b.do(fmt.Sprintf("set the viewport to %dx%d", width, height), chromedp.EmulateViewport(width, height))
	overflow := run(b, "measure the page width", chromedp.Evaluate[int64](
		`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if overflow > 0 {
		b.t.Errorf("at %d px wide the page scrolls sideways by %d px", width, overflow)
	}
}

// tabTo presses Tab until the element with the id has the focus, at most n times, and
// returns a description of it.
func tabTo(b *browser, id string, n int) string {
	b.t.Helper()
	var seen []string
	for range n {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		active := run(b, "read the focused element", chromedp.Evaluate[string](
			`(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""))(document.activeElement)`))
		if active == "a#"+id {
			return active
		}
		seen = append(seen, active)
	}
	b.t.Fatalf("#%s never got the focus; Tab went through %v", id, seen)
	return ""
}

// visibleRows counts the providers of the list that are shown.
func visibleRows(b *browser) int64 {
	b.t.Helper()
	return run(b, "count the shown providers", chromedp.Evaluate[int64](
		`Array.from(document.querySelectorAll("#providers li")).filter(li => li.offsetParent !== null).length`))
}

// saveScreenshot keeps a full-page screenshot of the current page in the artifact
// directory, named after the test, whatever the outcome.
func saveScreenshot(b *browser, name string) {
	b.t.Helper()
	png := run(b, "take a screenshot", chromedp.FullScreenshot(100))
	dir := artifactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, artifactName(b.t.Name())+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}
