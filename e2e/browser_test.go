//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Time limits of a browser test.
const (
	browserStartTimeout = 20 * time.Second // launch Chromium and open the tab
	browserTimeout      = 60 * time.Second // every step of one test together
	stepTimeout         = 15 * time.Second // one step
	artifactTimeout     = 5 * time.Second  // the screenshot and HTML of a failed test
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium with one tab, owned by one test. Its methods run one step
// each, bounded by [stepTimeout] and by the test's [browserTimeout], and end the test with
// t.Fatalf when the step fails; a failed test leaves a screenshot in [artifactDir].
type browser struct {
	t   *testing.T
	tab context.Context // the tab; no deadline, so the failure screenshot works after a timeout
	ctx context.Context // the tab with the test's deadline

	output *syncBuffer // Chromium's stdout and stderr

	// saved is shared by the copies that [browser.in] makes: the first failed test saves
	// the artifacts, its parent does not overwrite them with a later state.
	saved *bool
}

// newBrowser starts a fresh headless Chromium (own profile directory, no network
// chatter, certificate errors ignored for tests on self-signed TLS) and opens a tab. The
// browser is closed when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := findChromium(t)
	output := &syncBuffer{}
	// chromedp's defaults plus ours; some repeat a default so that the set this suite relies
	// on reads in one place.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(output),
	)
	// Cleanups run last-in first-out: the tab closes, then the browser, then t.TempDir's
	// removal of the profile directory.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)

	// The first Run launches the browser, which lives as long as the context of that
	// call; so that context has no deadline, and a stuck launch is bounded here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }()
	timer := time.NewTimer(browserStartTimeout)
	defer timer.Stop()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", exe, err)
		}
	case <-timer.C:
		cancelTab()
		t.Fatalf("start %s: no tab within %v", exe, browserStartTimeout)
	}

	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	t.Cleanup(cancel)
	b := &browser{t: t, tab: tab, ctx: ctx, output: output, saved: new(bool)}
	t.Cleanup(b.saveArtifactsOnFailure)
	return b
}

// in returns the browser for the subtest t: its steps fail t, and a failure of t saves the
// artifacts as soon as t ends. The subtests must not run in parallel: they share the tab.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	t.Cleanup(c.saveArtifactsOnFailure)
	return &c
}

// findChromium returns the path of the Chromium binary, or fails the test: the end-to-end
// suite needs a real browser and never skips for the lack of one.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatalf("chromium is not installed (neither %s nor chromium on PATH): run ./scripts/test, which installs it", chromiumPath)
	return ""
}

// do runs the actions as one step; what names the step in the failure message.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	run(b, what, chromedp.Steps(actions...))
}

// run runs one action as one step and returns its value; what names the step in the
// failure message. (A function, because methods cannot have type parameters.)
func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.location())
	}
	return v
}

// navigate loads url and waits for the page (after any redirects) to load.
func (b *browser) navigate(url string) *network.Response {
	b.t.Helper()
	return b.loads("open "+url, chromedp.Navigate(url))
}

// click clicks the element that matches the CSS selector with a real mouse event and waits
// for the page that the click loads (after any redirects).
func (b *browser) click(selector string) *network.Response {
	b.t.Helper()
	return b.loads("click "+selector, chromedp.Click(chromedp.CSS(selector)))
}

// loads runs the actions, which must start a navigation, and returns the response of the
// document that loads in the end.
func (b *browser) loads(what string, actions ...chromedp.Action[chromedp.Void]) *network.Response {
	b.t.Helper()
	resp := run(b, what, chromedp.Action[*network.Response](func(ctx context.Context, t *chromedp.Target) (*network.Response, error) {
		return chromedp.RunResponse(ctx, actions...)
	}))
	if resp == nil {
		b.t.Fatalf("%s: no response", what)
	}
	return resp
}

// waitVisible waits until the element that matches the CSS selector is visible.
func (b *browser) waitVisible(selector string) {
	b.t.Helper()
	b.do("wait for "+selector, chromedp.WaitVisible(chromedp.CSS(selector)))
}

// typeInto focuses the element that matches the CSS selector and types text with real key
// events.
func (b *browser) typeInto(selector, text string) {
	b.t.Helper()
	b.do("type into "+selector, chromedp.SendKeys(chromedp.CSS(selector), text))
}

// text returns the visible text of the first element that matches the CSS selector.
func (b *browser) text(selector string) string {
	b.t.Helper()
	return run(b, "read the text of "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// title returns the document's title.
func (b *browser) title() string {
	b.t.Helper()
	return run(b, "read the title", chromedp.Title())
}

// location returns the document's URL, or a note why it is unknown; for failure messages.
func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.tab, artifactTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

// saveArtifactsOnFailure writes a screenshot, the HTML of the page and Chromium's output to
// [artifactDir] if the test failed.
func (b *browser) saveArtifactsOnFailure() {
	t := b.t
	if !t.Failed() || *b.saved {
		return
	}
	*b.saved = true
	dir := artifactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artifacts: %v", err)
		return
	}
	base := filepath.Join(dir, artifactName(t.Name())+"-"+time.Now().Format("20060102-150405.000"))
	ctx, cancel := context.WithTimeout(b.tab, artifactTimeout)
	defer cancel()
	png, errShot := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if errShot == nil {
		errShot = os.WriteFile(base+".png", png, 0o644)
	}
	html, errHTML := chromedp.Run(ctx, chromedp.Evaluate[string](
		`"<!-- " + document.location + " -->\n" + document.documentElement.outerHTML`))
	if errHTML == nil {
		errHTML = os.WriteFile(base+".html", []byte(html), 0o644)
	}
	errLog := os.WriteFile(base+".chromium.log", []byte(b.output.String()), 0o644)
	if err := errors.Join(errShot, errHTML, errLog); err != nil {
		t.Logf("artifacts: %v", err)
	}
	t.Logf("artifacts of the failed test: %s.{png,html,chromium.log}", base)
}

// artifactDir is the directory for the artifacts of failed tests: $E2E_ARTIFACTS, or
// oidc-broker-e2e-artifacts in the system temporary directory. It outlives the test run.
func artifactDir() string {
	if d := os.Getenv("E2E_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "oidc-broker-e2e-artifacts")
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// artifactName turns a test name such as "TestX/acme_alice" into a file name.
func artifactName(testName string) string {
	return unsafeFileChars.ReplaceAllString(testName, "_")
}
