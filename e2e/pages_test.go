//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The branding of TestEveryPageOneSystem: a purple brand with a logo. Every page, the
// broker's and the demo IdP's, must show both.
const (
	brandPrimary    = "#6b21a8"
	brandPrimaryRGB = "rgb(107, 33, 168)"
	brandTitle      = "Example Corp"
	localPassword   = "dana-pw-0123"
)

// pageViewports are the widths every page is looked at: a desktop, a phone, and the
// narrowest width WCAG's reflow asks for (320 px, checked but not kept in docs/screenshots).
var pageViewports = []struct{ width, height int64 }{{1280, 900}, {390, 844}, {320, 640}}

// updateScreenshots: with UPDATE_SCREENSHOTS=1 the test writes docs/screenshots/*.png.
var updateScreenshots = os.Getenv("UPDATE_SCREENSHOTS") == "1"

// pageSetup is the broker with branding, the demo IdP drawn in the same look, a local
// provider, a provider that is down, and the access rule that refuses bob.
type pageSetup struct {
	origin, idp string
}

func startPageSetup(t *testing.T) pageSetup {
	t.Helper()
	dir := t.TempDir()
	logo := filepath.Join(dir, "logo.svg")
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 160 40"><rect width="40" height="40" rx="8" fill="` + brandPrimary +
		`"/><text x="50" y="28" font-family="sans-serif" font-size="22" fill="` + brandPrimary + `">Example</text></svg>`
	if err := os.WriteFile(logo, []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	sel := selection.Config{Title: brandTitle, Logo: logo, Colors: selection.Colors{Primary: brandPrimary},
		FooterLinks: []selection.Link{{Text: "Privacy", URL: "/privacy"}, {Text: "Help", URL: "https://example.com/help"}}}
	look, err := selection.New(sel)
	if err != nil {
		t.Fatal(err)
	}
	port := freePorts(t, 1)[0]
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	idp := httptest.NewUnstartedServer(nil)
	h, err := demo.NewIdP(demo.IdPConfig{
		Issuer: "http://" + idp.Listener.Addr().String(), Title: "Acme (demo IdP)", Users: demo.DemoUsers("acme"), Look: look,
		Clients: []demo.Client{{ID: idpClientID, Secret: idpClientSecret, RedirectURIs: []string{origin + "/oauth2/callback/acme"},
			PostLogoutRedirectURIs: []string{origin + "/oauth2/signed_out/acme"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = h
	idp.Start()
	t.Cleanup(idp.Close)
	app := startEchoApp(t)
	htpasswd := writeHtpasswd(t, dir, "dana", localPassword)
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
upstream: %q
selection:
  title: %q
  logo: %q
  colors: {primary: %q}
  footer_links: [{text: Privacy, url: /privacy}, {text: Help, url: "https://example.com/help"}]
routes:
  - path: /admins/
    groups: {one_of: [admins]}
providers:
  - {id: acme, name: Acme, issuer: %q, client_id: %q, client_secret: %q, scopes: [openid, email, profile, groups]}
  - {id: local, name: Local account, type: local, htpasswd_file: %q, groups: {admins: [dana]}}
  - {id: down, name: Initech, issuer: "http://127.0.0.1:1", client_id: x, client_secret: y}
`, port, app.URL, brandTitle, logo, brandPrimary, idp.URL, idpClientID, idpClientSecret, htpasswd)
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, path)
	// The provider that is down shows as such once its first discovery failed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := fetch(t, http.DefaultClient, http.MethodGet, origin+"/oauth2/sign_in", nil, nil)
		if resp.StatusCode == http.StatusOK && strings.Contains(body, `id="idp-down" role="link" aria-disabled="true"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider down is not shown as unavailable:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return pageSetup{origin: origin, idp: idp.URL}
}

// TestEveryPageOneSystem walks every page a user meets, in English and German, with a
// real Chromium: the sign-in page, the demo IdP's login form, the 403, "Use another
// account" (signing out at the IdP), the local login form, the sign-out confirmation, the
// signed-out page, the error pages and the demo IdP's signed-out page. On each, at 1280, 390
// and 320 px: nothing scrolls sideways, <html lang> is the language, the configured colour and
// logo are there (so the inline stylesheet passed the CSP), and the sign-ins are done with the
// keyboard alone (Tab, typing, Enter). With UPDATE_SCREENSHOTS=1 it writes the screenshots of
// docs/screenshots.
func TestEveryPageOneSystem(t *testing.T) {
	s := startPageSetup(t)
	for _, tt := range []struct{ lang, accept string }{{"en", "en-US,en;q=0.9"}, {"de", "de-DE,de;q=0.9,en;q=0.5"}} {
		t.Run(tt.lang, func(t *testing.T) {
			b := newBrowser(t)
			b.do("ask for "+tt.lang, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders,
					network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": tt.accept}})
				return err
			}))
			walkPages(t, b, s, tt.lang)
		})
	}
}

func walkPages(t *testing.T, b *browser, s pageSetup, lang string) {
	de := lang == "de"
	pick := func(en, german string) string {
		if de {
			return german
		}
		return en
	}
	rd := "/admins/report?q=1"
	b.navigate(s.origin + "/oauth2/sign_in?rd=" + url.QueryEscape(rd))
	checkPage(b, "sign-in", lang)
	if got := b.text("#idp-down"); !strings.Contains(got, pick("Unavailable", "Nicht verfügbar")) || strings.Contains(got, "retrying") {
		t.Errorf("the provider that is down reads %q", got)
	}
	if lang == "en" {
		darkScreenshot(b, "sign-in-dark")
	}

	// bob signs in at the IdP with the keyboard, and is refused /admins/.
	tabTo(b, "idp-acme", 6)
	checkFocusVisible(b)
	resp := b.loads("press Enter on Acme", chromedp.KeyEvent(kb.Enter))
	if !strings.HasPrefix(resp.URL, s.idp+"/login?") {
		t.Fatalf("Enter on Acme ended at %s", resp.URL)
	}
	checkPage(b, "idp-login", lang)
	b.typeInto("#username", "bob")
	resp = b.loads("type the password and press Enter", chromedp.SendKeys(chromedp.CSS("#password"), demo.DemoPassword+kb.Enter))
	if resp.Status != http.StatusForbidden || resp.URL != s.origin+rd {
		t.Fatalf("bob's sign-in ended at %s (status %d), want the 403 of %s", resp.URL, resp.Status, rd)
	}
	checkPage(b, "forbidden", lang)
	if got := b.text("#who-user"); got != "bob" {
		t.Errorf("the 403 names %q", got)
	}
	if got := b.text("h1"); got != pick("Access denied", "Zugriff verweigert") {
		t.Errorf("the 403 is titled %q", got)
	}
	if b.text("#request-id") == "" {
		t.Error("the 403 shows no reference")
	}

	// Use another account: signed out (at the IdP too), back to the sign-in page with rd.
	resp = b.click("#use-another-account")
	if want := s.origin + "/oauth2/sign_in?rd=" + url.QueryEscape(rd); resp.URL != want {
		t.Fatalf("Use another account ended at %s, want %s", resp.URL, want)
	}

	// dana (local, in admins) signs in on the broker's own form with the keyboard.
	tabTo(b, "idp-local", 6)
	b.loads("press Enter on the local account", chromedp.KeyEvent(kb.Enter))
	checkPage(b, "local-login", lang)
	if got := b.text("h1"); got != pick("Sign in with Local account", "Anmelden mit Local account") {
		t.Errorf("the local form is titled %q", got)
	}
	b.typeInto("#username", "dana")
	b.do("press Tab", chromedp.KeyEvent(kb.Tab))
	resp = b.loads("type the password and press Enter", chromedp.KeyEvent(localPassword+kb.Enter))
	if resp.Status != http.StatusOK || resp.URL != s.origin+rd {
		t.Fatalf("dana's sign-in ended at %s (status %d), want %s", resp.URL, resp.Status, rd)
	}

	b.navigate(s.origin + "/oauth2/sign_out")
	checkPage(b, "sign-out", lang)
	if got := b.text("#who-user"); got != "dana" {
		t.Errorf("the sign-out page names %q", got)
	}
	b.click("#sign-out")
	checkPage(b, "signed-out", lang)

	b.navigate(s.origin + "/oauth2/no-such-page")
	checkPage(b, "not-found", lang)
	b.navigate(s.origin + "/oauth2/callback/acme?state=forged&code=x")
	checkPage(b, "error", lang)
	b.navigate(s.idp + "/logged-out")
	checkPage(b, "idp-signed-out", lang)
}

// checkPage looks at the page at each of [pageViewports]: no sideways scrolling, the
// language, the brand's colour (from the inline stylesheet) on the page and on its links
// or buttons, the logo loaded; and keeps a screenshot in the artifact directory (and in
// docs/screenshots with UPDATE_SCREENSHOTS=1).
func checkPage(b *browser, name, lang string) {
	b.t.Helper()
	for _, vp := range pageViewports {
		b.do(fmt.Sprintf("set the viewport to %dx%d", vp.width, vp.height), chromedp.EmulateViewport(vp.width, vp.height))
		where := fmt.Sprintf("%s (%s, %d px)", name, lang, vp.width)
		if over := run(b, "measure the page width", chromedp.Evaluate[int64](
			`document.documentElement.scrollWidth - window.innerWidth`)); over > 0 {
			b.t.Errorf("%s scrolls sideways by %d px", where, over)
		}
		if got := run(b, "read <html lang>", chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
			b.t.Errorf("%s: <html lang=%q>", where, got)
		}
		if got := run(b, "read --primary", chromedp.Evaluate[string](
			`getComputedStyle(document.documentElement).getPropertyValue("--primary").trim()`)); got != brandPrimary {
			b.t.Errorf("%s: --primary is %q, want %s (the stylesheet did not apply)", where, got, brandPrimary)
		}
		if !run(b, "look for the brand colour", chromedp.Evaluate[bool](`(() => {
			const els = Array.from(document.querySelectorAll("a, button"));
			return els.length === 0 || els.some(e => { const s = getComputedStyle(e);
				return s.color === "`+brandPrimaryRGB+`" || s.backgroundColor === "`+brandPrimaryRGB+`"; });
		})()`)) {
			b.t.Errorf("%s: no link or button in the brand colour", where)
		}
		if w := run(b, "measure the logo", chromedp.Evaluate[int64](
			`(img => img && img.complete ? img.naturalWidth : 0)(document.querySelector("img.logo"))`)); w == 0 {
			b.t.Errorf("%s: the logo is missing or did not load", where)
		}
		shot := fmt.Sprintf("%s-%s-%d", name, lang, vp.width)
		saveScreenshot(b, shot)
		if updateScreenshots && vp.width != 320 && (lang == "en" || name == "sign-in" || name == "forbidden") {
			writeDocScreenshot(b, shot)
		}
	}
	b.do("back to the desktop width", chromedp.EmulateViewport(1280, 900))
}

// checkFocusVisible: the focused element has the focus ring (3 px, solid).
func checkFocusVisible(b *browser) {
	b.t.Helper()
	if got := run(b, "read the focus outline", chromedp.Evaluate[string](
		`(s => s.outlineStyle + " " + s.outlineWidth)(getComputedStyle(document.activeElement))`)); got != "solid 3px" {
		b.t.Errorf("the focused element has outline %q, want solid 3px", got)
	}
}

// darkScreenshot emulates prefers-color-scheme: dark, checks that the page turned dark,
// and keeps a screenshot.
func darkScreenshot(b *browser, name string) {
	b.t.Helper()
	b.do("prefer dark", prefersColorScheme("dark"))
	if bg := run(b, "read the card's background", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("main")).backgroundColor`)); bg != "rgb(30, 32, 37)" {
		b.t.Errorf("dark scheme: the card is %s", bg)
	}
	saveScreenshot(b, name)
	if updateScreenshots {
		writeDocScreenshot(b, name+"-en-1280")
	}
	b.do("prefer light", prefersColorScheme("light"))
}

// writeDocScreenshot writes the viewport's screenshot to docs/screenshots/<name>.png.
func writeDocScreenshot(b *browser, name string) {
	b.t.Helper()
	png := run(b, "take a screenshot", chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// prefersColorScheme emulates the prefers-color-scheme media feature.
func prefersColorScheme(v string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia,
			emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
		return err
	})
}

// TestManyProvidersDownStayCompact: with 40 providers down (at least half of them known to
// be, when the page is looked at) the sign-in page lists each on one line with the same translated word (no reason that flips between two texts), so the
// page stays short.
func TestManyProvidersDownStayCompact(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	var conf strings.Builder
	conf.WriteString("listen: 127.0.0.1:0\nproviders:\n")
	for i := range n {
		fmt.Fprintf(&conf, "  - {id: p%d, name: \"Partner organisation %d\", issuer: \"http://127.0.0.1:1/p%d\", client_id: x, client_secret: y}\n", i, i, i)
	}
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	serve, _ := startServe(t, path)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := fetch(t, http.DefaultClient, http.MethodGet, serve.URL+"/oauth2/sign_in", nil, nil)
		// Discovery runs in the background a few providers at a time: most are known to
		// be down after a moment, the rest count as available until tried.
		if strings.Count(body, `aria-disabled="true"`) >= n/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d of %d providers are shown as down:\n%s", n/2, n, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b := newBrowser(t)
	b.navigate(serve.URL + "/oauth2/sign_in")
	for _, vp := range []struct{ width, height int64 }{{1280, 900}, {390, 844}} {
		b.do("set the viewport", chromedp.EmulateViewport(vp.width, vp.height))
		// A line of text is about 20 px, a row with its padding under 44.
		tall := run(b, "measure the rows", chromedp.Evaluate[int64](
			`Array.from(document.querySelectorAll("#providers li")).filter(li => li.getBoundingClientRect().height > 44).length`))
		words := run(b, "read the reasons", chromedp.Evaluate[[]string](
			`Array.from(new Set(Array.from(document.querySelectorAll("#providers .reason")).map(e => e.textContent)))`))
		height := run(b, "measure the page", chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
		if tall != 0 || len(words) != 1 || words[0] != "Unavailable" {
			t.Errorf("at %d px: %d rows take more than one line; reasons %q", vp.width, tall, words)
		}
		if limit := int64(n*44 + 400); height > limit {
			t.Errorf("at %d px the page is %d px tall, want at most %d", vp.width, height, limit)
		}
		t.Logf("at %d px, %d providers down: the page is %d px tall", vp.width, n, height)
		saveScreenshot(b, fmt.Sprintf("%dpx", vp.width))
	}
}
