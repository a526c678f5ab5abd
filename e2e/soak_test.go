//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// The soak: the broker's memory under steady traffic for a long time, the
// session caches above all (their budget, and what expires leaving them).
// 300 forward-auth checks a second spread over 50 signed-in sessions, and
// 10 logins a second (each a new session, checked once as the browser comes
// back to the app, then never used again), with the Redis
// store; the broker's RSS and Go heap are sampled all along.
const (
	soakChecksPerSecond = 300
	soakSessions        = 50
	soakLoginsPerSecond = 10
	soakDuration        = 20 * time.Second // SOAK_DURATION overrides, up to soakMaxDuration
	soakMaxDuration     = time.Hour
	soakSamples         = 10 // RSS samples over the run, at least
)

// soakSample is the broker's memory at one moment.
type soakSample struct {
	at         time.Duration
	rss, heap  int64 // bytes; heap is go_memstats_heap_alloc_bytes
	checks     int64
	logins     int64
	goroutines int64
}

// TestSoakMemory runs the soak for SOAK_DURATION (20 s by default, for CI;
// the figures in docs/performance.md come from a long run) and reports the
// broker's RSS and heap over time in the log and in perf-soak.txt (artifact
// directory). It fails when a check is not answered 202 or a login does not
// complete, and when SOAK_MAX_RSS_MB is set and the RSS of the run's second
// half (the steady state) goes above it. SOAK_BROKER runs another build of
// the broker (an earlier version, for a before/after comparison).
func TestSoakMemory(t *testing.T) {
	duration := envDuration(t, "SOAK_DURATION", soakDuration, soakMaxDuration)
	maxRSS := int64(envInt(t, "SOAK_MAX_RSS_MB", 1<<20, 1<<20)) << 20
	bin := os.Getenv("SOAK_BROKER")
	if bin == "" {
		bin = buildPerfBroker(t)
	}
	rs := redisserver.Start(t)
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice", loadPassword)
	metricsPort := freePorts(t, 1)[0]
	broker, _ := startServeWith(t, bin, writeLoadConfig(t, filepath.Join(dir, "soak.yaml"), htpasswd,
		fmt.Sprintf("session:\n  store: redis\n  redis:\n    address: %q\nmetrics:\n  listen: 127.0.0.1:%d\n", rs.Addr, metricsPort)))
	pid := broker.cmd.Process.Pid
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)

	cookies := make([]string, soakSessions)
	for i := range cookies {
		cookies[i] = signInLocal(t, broker.URL, "alice", loadPassword)
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	var checks, logins atomic.Int64
	var failed atomic.Pointer[error]
	fail := func(err error) {
		if failed.CompareAndSwap(nil, &err) {
			cancel()
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var wg sync.WaitGroup
	// Checks: every 10 ms, as many as the rate asks for by then (a late
	// tick catches up), over the sessions round robin, each on its own
	// goroutine (bounded: at most 64 in flight).
	inflight := make(chan struct{}, 64)
	begin := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for int64(n) < int64(time.Since(begin).Seconds()*soakChecksPerSecond) {
				cookie := cookies[n%soakSessions]
				n++
				select {
				case inflight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wg.Go(func() {
					defer func() { <-inflight }()
					if err := soakCheck(ctx, client, broker.URL, cookie); err != nil && ctx.Err() == nil {
						fail(err)
					}
					checks.Add(1)
				})
			}
		}
	})
	// Logins: the same way, each its own browser.
	wg.Go(func() {
		tick := time.NewTicker(time.Second / soakLoginsPerSecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for int64(n) < int64(time.Since(begin).Seconds()*soakLoginsPerSecond) {
				n++
				select {
				case inflight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wg.Go(func() {
					defer func() { <-inflight }()
					cookie, err := soakLogin(ctx, broker.URL, "alice", loadPassword)
					if err == nil { // back at the app, through the proxy's check
						err = soakCheck(ctx, client, broker.URL, cookie)
					}
					if err != nil && ctx.Err() == nil {
						fail(err)
					}
					logins.Add(1)
				})
			}
		}
	})
	// Samples: soakSamples over the run, at least a second apart and at
	// most 30 s.
	every := min(max(duration/soakSamples, time.Second), 30*time.Second)
	start := time.Now()
	var samples []soakSample
	sample := func() {
		s := soakSample{at: time.Since(start).Round(time.Second), checks: checks.Load(), logins: logins.Load()}
		s.rss = processRSS(t, pid)
		m := scrapeMetrics(client, metricsURL)
		s.heap, s.goroutines = m["go_memstats_heap_alloc_bytes"], m["go_goroutines"]
		samples = append(samples, s)
	}
	sample()
	tick := time.NewTicker(every)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	wg.Wait()
	sample()
	if err := failed.Load(); err != nil {
		t.Fatalf("soak: %v", *err)
	}

	report := soakReport(samples, duration)
	t.Log("\n" + report)
	writeArtifact(t, "perf-soak.txt", report)
	if checks.Load() == 0 || logins.Load() == 0 {
		t.Fatalf("%d checks and %d logins made", checks.Load(), logins.Load())
	}
	for _, s := range samples[len(samples)/2:] {
		if s.rss > maxRSS {
			t.Errorf("RSS %d MB at %v, above SOAK_MAX_RSS_MB=%d", s.rss>>20, s.at, maxRSS>>20)
		}
	}
}

// soakCheck asks forward-auth once with cookie and wants 202.
func soakCheck(ctx context.Context, c *http.Client, base, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/oauth2/auth", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("forward-auth answered %d, want 202", resp.StatusCode)
	}
	return nil
}

// soakLogin is signInLocal for a goroutine: the login, as a new browser,
// with errors returned.
func soakLogin(ctx context.Context, base, user, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, form url.Values) (*http.Response, error) {
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := do(http.MethodGet, base+"/oauth2/start/local?rd=%2F", nil)
	if err != nil {
		return "", err
	}
	form, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("start: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	state := form.Query().Get("state")
	resp, err = do(http.MethodPost, base+"/oauth2/local/local", url.Values{"state": {state}, "username": {user}, "password": {password}})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("login form: %d, want 303", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "oidc_broker" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", errors.New("no session cookie after the login")
}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page.
func scrapeMetrics(c *http.Client, u string) map[string]int64 {
	out := map[string]int64{}
	resp, err := c.Get(u)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err == nil {
			out[name] = int64(f)
		}
	}
	return out
}

// soakReport is the RSS curve.
func soakReport(samples []soakSample, d time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d forward-auth checks/s over %d sessions and %d logins/s (local user), Redis store, for %v\n",
		soakChecksPerSecond, soakSessions, soakLoginsPerSecond, d)
	fmt.Fprintf(&b, "%8s %8s %8s %10s %8s %10s\n", "time", "RSS MB", "heap MB", "checks", "logins", "goroutines")
	for _, s := range samples {
		fmt.Fprintf(&b, "%8v %8.1f %8.1f %10d %8d %10d\n", s.at, float64(s.rss)/(1<<20), float64(s.heap)/(1<<20), s.checks, s.logins, s.goroutines)
	}
	return b.String()
}
