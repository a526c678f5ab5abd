//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Start-up with many providers. Discovery is lazy (docs/architecture.md), so
// a broker with a thousand IdPs must start as fast as one with a few: the
// target is under 1 s from process start to a healthy /healthz. The test
// reports the times and the broker's memory, in its log (go test -v) and in
// perf-startup.txt in the artifact directory (see artifactDir); it asserts
// that start-up and the sign-in page work, not the target (CI machines are
// too noisy for a fixed bar).
const (
	startupProviders = 1000
	startupRuns      = 3  // starts (and runs of check); the report gives the median
	startupEvery     = 4  // every 4th provider claims an email domain
	startupPages     = 21 // loads of the sign-in page after the first; the report gives the median

	startupMaxProviders = 20_000

	// The sign-in page lists all providers up to
	// selection.discovery_threshold (default 100); above it, the
	// discovery view: none but a search's first 50 matches.
	startupDiscoveryThreshold = 100
	startupSearchResults      = 50

	// The targets of issue 18, asserted when STARTUP_PROVIDERS asks for
	// 10,000 or more (the default run of 1,000 only reports them).
	startupAssertFrom = 10_000
	startupTarget     = time.Second
	startupPageTarget = 2 * time.Millisecond
	startupRSSTarget  = 100 << 20
)

// TestStartup1000Providers writes a configuration of 1,000 OpenID providers
// (issuers on a closed loopback port, distinct client ids and secrets, a
// domain for every fourth, in ten groups) and measures:
//
//   - "oidc-broker check" on it;
//   - "oidc-broker serve": from process start to the first 200 from
//     /healthz (polled every millisecond), and the RSS then;
//   - the sign-in page: above 100 providers its discovery view, which
//     lists none, and a search by a provider's name, which lists it first
//     among at most 50; up to 100, the page that lists them all; and
//     home-realm discovery by one of the domains;
//   - the RSS after the page loads.
//
// Not parallel, like TestLoadForwardAuth: nothing else runs meanwhile.
//
// STARTUP_PROVIDERS sets another count (up to startupMaxProviders: the
// figures for 10,000 in docs/performance.md come from it). From 10,000 the
// test also asserts issue 18's targets (medians): start-up under 1 s, the
// page under 2 ms, RSS under 100 MB after start and after the page loads.
func TestStartup1000Providers(t *testing.T) {
	n := envInt(t, "STARTUP_PROVIDERS", startupProviders, startupMaxProviders)
	broker := buildPerfBroker(t)
	dir := t.TempDir()
	closed := freePorts(t, 1)[0] // nothing listens there once freePorts returns

	var checks []time.Duration
	config := writeStartupConfig(t, filepath.Join(dir, "check.yaml"), n, 0, closed)
	for range startupRuns {
		checks = append(checks, timeCheck(t, broker, config, n))
	}

	var starts []time.Duration
	var rss []int64
	var first *demoBroker
	for i := range startupRuns {
		port := freePorts(t, 1)[0]
		config := writeStartupConfig(t, filepath.Join(dir, fmt.Sprintf("serve-%d.yaml", i)), n, port, closed)
		d, b := timeStart(t, broker, config, port)
		starts = append(starts, d)
		rss = append(rss, processRSS(t, b.cmd.Process.Pid))
		if first == nil {
			first = b
		}
	}

	// Home-realm discovery first: the sign-in page's status checks try
	// every provider's discovery (against a closed port), and one that
	// failed is shown unavailable and not redirected to.
	checkHomeRealm(t, first.URL, min(420, (n-1)/startupEvery*startupEvery)) // a provider with a domain
	page1 := checkSignInPage(t, first.URL, n)
	last := fmt.Sprintf("realm-%04d", n-1)
	search := "/oauth2/sign_in?rd=%2F&q=" + url.QueryEscape(fmt.Sprintf("Realm %d", n-1))
	checkSearch(t, first.URL+search, last)
	var pages, searches []time.Duration
	for range startupPages {
		pages = append(pages, timeSignInPage(t, first.URL+"/oauth2/sign_in?rd=%2F"))
		searches = append(searches, timeSignInPage(t, first.URL+search))
	}
	rssAfter := processRSS(t, first.cmd.Process.Pid)
	view := fmt.Sprintf("all %d listed", n)
	if n > startupDiscoveryThreshold {
		view = "discovery view"
	}

	var b strings.Builder
	fmt.Fprintf(&b, "start-up with %d OpenID providers (lazy discovery; issuers on a closed port); %d runs, medians; %d CPUs, %s/%s, %s\n",
		n, startupRuns, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "oidc-broker check:                    %v  (runs: %v)\n", medianDuration(checks), roundAll(checks))
	fmt.Fprintf(&b, "serve, process start to /healthz 200: %v  (runs: %v; target < 1s)\n", medianDuration(starts), roundAll(starts))
	fmt.Fprintf(&b, "RSS after start:                      %.1f MB (runs: %v)\n", float64(medianInt(rss))/(1<<20), mbAll(rss))
	fmt.Fprintf(&b, "sign-in page, %s:  first %v, then median %v of %d (min %v)\n",
		view, page1.Round(time.Microsecond), medianDuration(pages), len(pages), slices.Min(pages).Round(time.Microsecond))
	fmt.Fprintf(&b, "search for %q:              median %v of %d (min %v)\n",
		fmt.Sprintf("Realm %d", n-1), medianDuration(searches), len(searches), slices.Min(searches).Round(time.Microsecond))
	fmt.Fprintf(&b, "RSS after the %d page loads:          %.1f MB\n", 1+2*startupPages, float64(rssAfter)/(1<<20))
	t.Log("\n" + b.String())
	writeArtifact(t, "perf-startup.txt", b.String())

	if n >= startupAssertFrom {
		if d := medianDuration(starts); d >= startupTarget {
			t.Errorf("start-up median %v, target under %v", d, startupTarget)
		}
		if d := medianDuration(pages); d >= startupPageTarget {
			t.Errorf("sign-in page median %v, target under %v", d, startupPageTarget)
		}
		for what, v := range map[string]int64{"after start (median)": medianInt(rss), "after the page loads": rssAfter} {
			if v >= startupRSSTarget {
				t.Errorf("RSS %s %.1f MB, target under %d MB", what, float64(v)/(1<<20), startupRSSTarget>>20)
			}
		}
	}
}

// writeStartupConfig writes the configuration of n providers, listening
// on port (0: any; check does not listen).
func writeStartupConfig(t *testing.T, path string, n, port, closed int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:%d\nproviders:\n", port)
	for i := range n {
		fmt.Fprintf(&b, "  - id: realm-%04d\n    name: \"Realm %d\"\n    group: \"Region %d\"\n", i, i, i%10)
		fmt.Fprintf(&b, "    issuer: \"http://127.0.0.1:%d/realms/%d\"\n", closed, i)
		fmt.Fprintf(&b, "    client_id: \"broker-%d\"\n    client_secret: \"secret-%d-%x\"\n", i, i, uint64(i)*0x9e3779b97f4a7c15)
		if i%startupEvery == 0 {
			fmt.Fprintf(&b, "    domains: [realm%04d.example, .realm%04d.example.org]\n", i, i)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// timeCheck runs "oidc-broker check" and returns how long it took.
func timeCheck(t *testing.T, broker, config string, n int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, broker, "check", "--config", config).CombinedOutput()
	d := time.Since(start)
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("ok (%d providers)", n)) {
		t.Fatalf("oidc-broker check: %v\n%s", err, out)
	}
	return d
}

// timeStart starts "oidc-broker serve" on port and returns the time from the
// process's start to the first 200 from /healthz, and the running broker.
func timeStart(t *testing.T, broker, config string, port int) (time.Duration, *demoBroker) {
	t.Helper()
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	healthy := make(chan time.Time, 1)
	go func() {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, healthz, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					healthy <- time.Now()
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	b, _ := startServeWith(t, broker, config)
	select {
	case at := <-healthy:
		return at.Sub(start), b
	case <-ctx.Done():
		t.Fatalf("GET %s: no 200 within %v of the start", healthz, startTimeout)
	}
	return 0, nil
}

// checkSignInPage loads the sign-in page and returns how long the answer
// took. Up to startupDiscoveryThreshold providers it must list them all;
// above, it is the discovery view, which lists none (no featured ones are
// configured) and offers the search.
func checkSignInPage(t *testing.T, base string, n int) time.Duration {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	resp, body := fetchPage(t, c, base+"/oauth2/sign_in?rd=%2F")
	d := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /oauth2/sign_in: %d\n%.2000s", resp.StatusCode, body)
	}
	want := n
	if n > startupDiscoveryThreshold {
		want = 0
		if !strings.Contains(body, `<input id="q" name="q" type="search"`) || !strings.Contains(body, `id="login"`) {
			t.Errorf("the sign-in page of %d providers lacks the search or the email field\n%.3000s", n, body)
		}
	}
	if got := strings.Count(body, ` id="idp-realm-`); got != want {
		t.Errorf("the sign-in page lists %d providers, want %d", got, want)
	}
	if want > 0 {
		for _, id := range []string{"realm-0000", fmt.Sprintf("realm-%04d", n-1)} {
			if !strings.Contains(body, `id="idp-`+id+`"`) {
				t.Errorf("the sign-in page lacks %s", id)
			}
		}
	}
	return d
}

// checkSearch loads a search by a provider's name (rawURL) and wants that
// provider listed first, among at most startupSearchResults.
func checkSearch(t *testing.T, rawURL, first string) {
	t.Helper()
	resp, body := fetchPage(t, &http.Client{Timeout: 10 * time.Second}, rawURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", rawURL, resp.StatusCode)
	}
	i := strings.Index(body, ` id="idp-realm-`)
	if got := strings.Count(body, ` id="idp-realm-`); got == 0 || got > startupSearchResults || !strings.HasPrefix(body[i:], ` id="idp-`+first+`"`) {
		t.Errorf("GET %s lists %d providers, want %s first and at most %d\n%.3000s", rawURL, got, first, startupSearchResults, body)
	}
}

// timeSignInPage loads a page (rawURL) and returns how long it took.
func timeSignInPage(t *testing.T, rawURL string) time.Duration {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	if resp, _ := fetchPage(t, c, rawURL); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", rawURL, resp.StatusCode)
	}
	return time.Since(start)
}

// fetchPage is fetch for a GET of a page that may be larger than fetch
// reads (the sign-in page of 10,000 providers is about 1.2 MB): all of it,
// up to 64 MiB.
func fetchPage(t *testing.T, c *http.Client, rawURL string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", rawURL, err)
	}
	return resp, string(b)
}

// checkHomeRealm: an email at provider i's domain leads to its start URL.
func checkHomeRealm(t *testing.T, base string, i int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	email := fmt.Sprintf("jane@realm%04d.example", i)
	resp, body := fetch(t, c, http.MethodGet, base+"/oauth2/sign_in?rd=%2F&login="+email, nil, nil)
	want := fmt.Sprintf("/oauth2/start/realm-%04d?rd=%%2F&login_hint=jane%%40realm%04d.example", i, i)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Errorf("home-realm discovery of %s: %d, Location %q; want 302 to %s\n%.2000s", email, resp.StatusCode, resp.Header.Get("Location"), want, body)
	}
}

// processRSS reads a process's resident set size from /proc, in bytes.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func medianDuration(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f)).Round(time.Millisecond / 10)
}

func medianInt(v []int64) int64 {
	f := make([]float64, len(v))
	for i, n := range v {
		f[i] = float64(n)
	}
	return int64(median(f))
}

func roundAll(v []time.Duration) string {
	s := make([]string, len(v))
	for i, d := range v {
		s[i] = d.Round(time.Millisecond / 10).String()
	}
	return strings.Join(s, ", ")
}

func mbAll(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprintf("%.1f", float64(n)/(1<<20))
	}
	return strings.Join(s, ", ")
}
