//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// The forward-auth load test: how many /oauth2/auth checks with a valid
// session the real broker answers per second, and how much CPU each costs,
// next to a bare Go net/http server that only answers "yes"
// (e2e/loadbare), measured by wrk in one run on one machine.
//
// Pinned (loadpin_test.go, where taskset and two CPUs exist), the server
// under test runs alone on CPU 1 with GOMAXPROCS=1, and wrk, redis-server
// and the test itself on CPU 0: the ratio of two servers' requests/s is
// then the ratio of their CPU cost per request, which is what a user pays.
// Unpinned, wrk and the neighbours take CPU from whichever server runs,
// which compresses every ratio toward 1.
//
// wrk settings: -t1 -c32 -d4s --latency. One wrk thread keeps its CPU
// busy; 32 keep-alive connections keep the server's CPU saturated. Every
// target gets the same settings and the same request (the session cookie
// too, which the bare server ignores), so the ratio compares the servers, not
// the load. Each target gets a 1 s warm-up first (connections, the Go
// heap's size, Redis's pool), then the rounds are interleaved (bare,
// broker-memory, broker-redis, then the other way round, and so on), so
// that the bare server's run of a round is next to the brokers' of the
// same round. A shared CI machine has slow moments of several seconds: the
// ratio of a broker is therefore the median of its per-round ratios to the
// bare run of the same round (paired), not the ratio of the medians. The
// CPU time each server process used per request (from /proc/PID/stat) is
// reported too, and redis-server's separately: it does not depend on how
// much CPU a neighbour left, only on the work done, and is the robust
// figure on a shared machine.
const (
	loadThreads     = 1
	loadConnections = 32
	loadDuration    = 4 * time.Second // per target and round
	loadRounds      = 5
	loadWarmup      = time.Second
	// loadMaxDuration and loadMaxRounds bound LOAD_DURATION and
	// LOAD_ROUNDS, which override the two above for a longer manual run.
	loadMaxDuration = 30 * time.Second
	loadMaxRounds   = 9
)

// loadPassword is alice's password at the brokers' local provider.
const loadPassword = "load-test-password"

// loadTarget is one server under load.
type loadTarget struct {
	name     string
	url      string // of /oauth2/auth
	cookie   string // the session cookie header value (the bare server gets one and ignores it)
	pid      int    // the server's process
	redisPID int    // the redis-server it uses; 0 for none
	runs     []wrkResult
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	requests  int64
	perSecond float64
	p99       time.Duration
	cpu       time.Duration // the server process's CPU time (user and system) per request; 0 when unknown
	redisCPU  time.Duration // redis-server's, for a target with Redis
}

// TestLoadForwardAuth measures GET /oauth2/auth with a valid session on the
// broker binary with the memory store and with the Redis store (a real
// redis-server), against the bare server, with wrk. It fails on wrk errors,
// on any answer that is not 2xx, and when the session does not give 202
// before and after the load. It reports requests/s, the ratio to the bare
// server, p99 latency and CPU per request per target, in the test's log
// (go test -v) and in perf-load.txt in the artifact directory (see
// artifactDir), and fails on the ratio only when LOAD_MIN_RATIO (memory) or
// LOAD_MIN_RATIO_REDIS is set and not met (pinned, the CPU ratio; else the
// requests/s ratio): CI machines are too noisy for a fixed bar.
//
// For longer or comparative runs (docs/performance.md):
//   - LOAD_DURATION (such as 10s) and LOAD_ROUNDS change the length of the
//     measurement, within bounds;
//   - LOAD_BROKER_BEFORE names another broker binary (an older commit's),
//     measured in the same rounds as "before-memory" and "before-redis";
//   - LOAD_CPUPROFILE names a directory: the broker under test is built
//     with -tags cpuprofile (cmd/oidc-broker/cpuprofile.go) and writes
//     broker-memory.pprof and broker-redis.pprof there, and the bare server
//     bare.pprof: profiles taken under exactly the conditions measured
//     (OIDC_BROKER_MEMPROFILE, set by hand, adds an allocation profile).
//
// Not parallel: the parallel tests wait until it is done, so nothing else
// takes CPU from the measurement.
func TestLoadForwardAuth(t *testing.T) {
	minMemory, minRedis := envRatio(t, "LOAD_MIN_RATIO"), envRatio(t, "LOAD_MIN_RATIO_REDIS")
	duration := envDuration(t, "LOAD_DURATION", loadDuration, loadMaxDuration)
	rounds := envInt(t, "LOAD_ROUNDS", loadRounds, loadMaxRounds)
	profileDir := os.Getenv("LOAD_CPUPROFILE")
	wrk := findWrk(t)
	plan := planCPUs(t)
	broker := buildPerfBroker(t)
	if profileDir != "" {
		broker = goBuild(t, "./cmd/oidc-broker", "oidc-broker", "-tags", "cpuprofile")
	}
	var bareEnv []string
	if profileDir != "" {
		bareEnv = append(bareEnv, "LOADBARE_CPUPROFILE="+filepath.Join(profileDir, "bare.pprof"))
	}
	bare, barePID := startBare(t, plan.serverCommand(bareEnv, goBuild(t, "./e2e/loadbare", "loadbare"), "-listen", "127.0.0.1:0"))
	rs := redisserver.Start(t)
	plan.away(t, rs.PID())

	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice", loadPassword)
	memoryConf := writeLoadConfig(t, filepath.Join(dir, "memory.yaml"), htpasswd, "")
	redisConf := writeLoadConfig(t, filepath.Join(dir, "redis.yaml"), htpasswd,
		fmt.Sprintf("session:\n  store: redis\n  redis:\n    address: %q\n", rs.Addr))
	targets := []*loadTarget{{name: "bare", url: bare + "/oauth2/auth", pid: barePID}}
	add := func(name, bin, conf string, redisPID int) {
		var env []string
		if profileDir != "" && strings.HasPrefix(name, "broker-") {
			env = append(env, "OIDC_BROKER_CPUPROFILE="+filepath.Join(profileDir, name+".pprof"))
		}
		b, _ := startServeCmd(t, plan.serverCommand(env, bin, "serve", "--config", conf))
		targets = append(targets, &loadTarget{name: name, url: b.URL + "/oauth2/auth", pid: b.cmd.Process.Pid,
			cookie: signInLocal(t, b.URL, "alice", loadPassword), redisPID: redisPID})
	}
	add("broker-memory", broker, memoryConf, 0)
	add("broker-redis", broker, redisConf, rs.PID())
	if before := os.Getenv("LOAD_BROKER_BEFORE"); before != "" {
		add("before-memory", before, memoryConf, 0)
		add("before-redis", before, redisConf, rs.PID())
	}
	// The same request to every server: the bare one reads the Cookie
	// header as net/http reads every header, and ignores it.
	targets[0].cookie = targets[1].cookie
	answers := make([]http.Header, len(targets))
	for i, tg := range targets {
		answers[i] = checkForwardAuth(t, tg, "before the load")
	}

	deadline := time.Now().Add(time.Duration(len(targets))*(loadWarmup+time.Duration(rounds)*duration) + time.Minute)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()
	for _, tg := range targets {
		runWrk(ctx, t, plan, wrk, tg, loadWarmup)
	}
	for round := range rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, tg := range order {
			tg.runs = append(tg.runs, runWrk(ctx, t, plan, wrk, tg, duration))
		}
	}
	for _, tg := range targets {
		checkForwardAuth(t, tg, "after the load")
	}

	report := loadReport(plan, targets, duration, rounds) + sameAnswer(answers[0], answers[1])
	t.Log("\n" + report)
	writeArtifact(t, "perf-load.txt", report)
	for _, c := range []struct {
		tg  *loadTarget
		min float64
		env string
	}{{targets[1], minMemory, "LOAD_MIN_RATIO"}, {targets[2], minRedis, "LOAD_MIN_RATIO_REDIS"}} {
		// Pinned, the cost ratio is what the requests/s ratio measures,
		// with less of the neighbours' noise.
		if ratio := pairedCPURatio(c.tg.runs, targets[0].runs); plan.pinned() && !math.IsNaN(ratio) {
			if c.min > 0 && ratio < c.min {
				t.Errorf("%s: the bare server's CPU per request is %.2f of its, below %s=%g", c.tg.name, ratio, c.env, c.min)
			}
		} else if ratio := pairedRatio(c.tg.runs, targets[0].runs); c.min > 0 && ratio < c.min {
			t.Errorf("%s answers %.2f of the bare server's requests/s, below %s=%g", c.tg.name, ratio, c.env, c.min)
		}
	}
}

// writeLoadConfig writes a broker configuration for the load test: a free
// loopback port, forward-auth only, a local provider whose user alice is
// in the groups admins and staff, and more YAML at the top level.
func writeLoadConfig(t *testing.T, path, htpasswd, extra string) string {
	t.Helper()
	conf := fmt.Sprintf(`listen: 127.0.0.1:0
%sproviders:
  - id: local
    name: Local account
    type: local
    htpasswd_file: %q
    groups:
      admins: [alice]
      staff: [alice]
`, extra, htpasswd)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeHtpasswd writes an htpasswd file with one bcrypt entry. The cost is
// bcrypt's lowest: the test signs in once per broker, and the broker's
// warning about the low cost is expected.
func writeHtpasswd(t *testing.T, dir, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "users.htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signInLocal signs in at the broker at base through its local provider, as
// a browser does (start, the form, its post), and returns the session
// cookie as a Cookie header value.
func signInLocal(t *testing.T, base, user, password string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ := fetch(t, c, http.MethodGet, base+"/oauth2/start/local?rd=%2F", nil, nil)
	form, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || form.Path != "/oauth2/local/local" {
		t.Fatalf("GET /oauth2/start/local: %d, Location %q; want 302 to the local login form", resp.StatusCode, resp.Header.Get("Location"))
	}
	state := form.Query().Get("state")
	if resp, body := fetch(t, c, http.MethodGet, base+form.RequestURI(), nil, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, state) {
		t.Fatalf("GET the login form: %d, want 200 with the state\n%s", resp.StatusCode, body)
	}
	resp, body := fetch(t, c, http.MethodPost, base+"/oauth2/local/local",
		url.Values{"state": {state}, "username": {user}, "password": {password}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST the login form: %d, Location %q; want 303 to /\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "oidc_broker" {
			return ck.Name + "=" + ck.Value
		}
	}
	t.Fatalf("no oidc_broker cookie after signing in at %s", base)
	return ""
}

// checkForwardAuth asks the target once, with its session, and wants 202
// for local:alice. It returns the answer's header.
func checkForwardAuth(t *testing.T, tg *loadTarget, when string) http.Header {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	h := http.Header{}
	if tg.cookie != "" {
		h.Set("Cookie", tg.cookie)
	}
	resp, body := fetch(t, c, http.MethodGet, tg.url, nil, h)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Auth-Request-User") != "local:alice" {
		t.Fatalf("%s %s: GET /oauth2/auth: %d, user %q; want 202 for local:alice\n%s",
			tg.name, when, resp.StatusCode, resp.Header.Get("X-Auth-Request-User"), body)
	}
	return resp.Header
}

// sameAnswer says whether the bare server's answer still mirrors the
// broker's, as e2e/loadbare means it to: the same header fields with the
// same values (Date aside, and the values of fields only one sends).
func sameAnswer(bare, broker http.Header) string {
	var onlyBare, onlyBroker, differ []string
	for k := range bare {
		if _, ok := broker[k]; !ok {
			onlyBare = append(onlyBare, k)
		} else if k != "Date" && !slices.Equal(bare[k], broker[k]) {
			differ = append(differ, k)
		}
	}
	for k := range broker {
		if _, ok := bare[k]; !ok {
			onlyBroker = append(onlyBroker, k)
		}
	}
	if len(onlyBare)+len(onlyBroker)+len(differ) == 0 {
		return "the bare server's answer has the broker's status and header fields (Date aside)\n"
	}
	slices.Sort(onlyBare)
	slices.Sort(onlyBroker)
	slices.Sort(differ)
	return fmt.Sprintf("answers: fields only the broker sends %v, only the bare server %v, with other values %v\n", onlyBroker, onlyBare, differ)
}

// findWrk returns the path of wrk, or fails the test (./scripts/test
// installs it).
func findWrk(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatal("wrk is not installed (Debian package wrk): run ./scripts/test, which installs it")
	}
	return p
}

// What runWrk reads from wrk's output.
var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)\s*$`)
	wrkP99      = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:.*$`)
	wrkErrors   = regexp.MustCompile(`(?m)^\s*Socket errors:.*$`)
)

// runWrk loads the target for d and returns what wrk measured. It fails the
// test when wrk fails, reports socket errors (connect, read, write,
// timeout) or any answer that is not 2xx or 3xx, and when it finds no
// requests.
func runWrk(ctx context.Context, t *testing.T, plan cpuPlan, wrk string, tg *loadTarget, d time.Duration) wrkResult {
	t.Helper()
	args := []string{"-t" + strconv.Itoa(loadThreads), "-c" + strconv.Itoa(loadConnections),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency", "--timeout", "2s"}
	if tg.cookie != "" {
		args = append(args, "-H", "Cookie: "+tg.cookie)
	}
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	cmd := plan.otherCommand(ctx, wrk, append(args, tg.url)...)
	cpu0, cpuOK := processCPU(tg.pid)
	redis0, _ := processCPU(tg.redisPID)
	out, err := cmd.CombinedOutput()
	cpu1, cpuOK1 := processCPU(tg.pid)
	redis1, _ := processCPU(tg.redisPID)
	text := string(out)
	if err != nil {
		t.Fatalf("%s: wrk %s: %v\n%s", tg.name, strings.Join(args, " "), err, text)
	}
	if m := wrkNon2xx.FindString(text); m != "" {
		t.Fatalf("%s: wrk got answers other than 2xx (%s)\n%s", tg.name, strings.TrimSpace(m), text)
	}
	if m := wrkErrors.FindString(text); m != "" {
		t.Fatalf("%s: wrk reported errors (%s)\n%s", tg.name, strings.TrimSpace(m), text)
	}
	var r wrkResult
	n, rate, p99 := wrkRequests.FindStringSubmatch(text), wrkRate.FindStringSubmatch(text), wrkP99.FindStringSubmatch(text)
	if n == nil || rate == nil || p99 == nil {
		t.Fatalf("%s: cannot read wrk's output:\n%s", tg.name, text)
	}
	r.requests, _ = strconv.ParseInt(n[1], 10, 64)
	r.perSecond, _ = strconv.ParseFloat(rate[1], 64)
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[p99[2]]
	r.p99 = time.Duration(v * float64(unit))
	if r.requests == 0 || r.perSecond == 0 {
		t.Fatalf("%s: wrk made no requests:\n%s", tg.name, text)
	}
	if cpuOK && cpuOK1 {
		r.cpu = (cpu1 - cpu0) / time.Duration(r.requests)
	}
	r.redisCPU = (redis1 - redis0) / time.Duration(r.requests)
	return r
}

// processCPU is the CPU time (user and system) that process pid has used,
// from /proc/PID/stat (Linux; false elsewhere or on error). Its resolution
// is the clock tick (10 ms): over a run of seconds, well under 1%.
func processCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The fields after the command (in parentheses, which may contain
	// spaces): state is field 3, utime 14 and stime 15 (proc(5)).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on every Linux platform Go supports
	return time.Duration(utime+stime) * tick, true
}

// loadReport is the summary table.
func loadReport(plan cpuPlan, targets []*loadTarget, d time.Duration, rounds int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "forward-auth load: GET /oauth2/auth with a valid session (local user), wrk -t%d -c%d -d%v --latency,\n",
		loadThreads, loadConnections, d)
	fmt.Fprintf(&b, "%d interleaved rounds after a %v warm-up; %d CPUs, %s/%s, %s\n",
		rounds, loadWarmup, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "%s\n", plan)
	b.WriteString("req/s, p99 and CPU: medians over the rounds; ratio: median of the per-round ratios to the bare server;\n")
	b.WriteString("CPU: the server process's CPU time per request (user and system); redis: redis-server's;\n")
	b.WriteString("CPU ratio: median of the per-round ratios of the bare server's CPU per request to the target's\n")
	fmt.Fprintf(&b, "%-14s %10s %14s %10s %10s %10s %10s   %s\n", "target", "req/s", "ratio to bare", "p99", "CPU", "redis", "CPU ratio",
		"per round: req/s (p99, CPU)")
	for _, tg := range targets {
		rounds := make([]string, len(tg.runs))
		for i, r := range tg.runs {
			rounds[i] = fmt.Sprintf("%.0f (%v, %v)", r.perSecond, r.p99.Round(time.Microsecond), r.cpu.Round(10*time.Nanosecond))
		}
		redis := "-"
		if tg.redisPID != 0 {
			redis = medianOf(tg.runs, func(r wrkResult) time.Duration { return r.redisCPU }).String()
		}
		fmt.Fprintf(&b, "%-14s %10.0f %14.2f %10v %10v %10s %10.2f   %s\n", tg.name, medianRate(tg.runs), pairedRatio(tg.runs, targets[0].runs),
			medianP99(tg.runs), medianOf(tg.runs, func(r wrkResult) time.Duration { return r.cpu }), redis,
			pairedCPURatio(tg.runs, targets[0].runs), strings.Join(rounds, ", "))
	}
	return b.String()
}

// pairedRatio is the median over the rounds of runs[i]'s requests/s over
// bare[i]'s, the bare server's run of the same round.
func pairedRatio(runs, bare []wrkResult) float64 {
	v := make([]float64, min(len(runs), len(bare)))
	for i := range v {
		v[i] = runs[i].perSecond / bare[i].perSecond
	}
	return median(v)
}

// pairedCPURatio is the median over the rounds of bare[i]'s CPU time per
// request over runs[i]'s: the cost ratio, which a neighbour taking CPU
// from the server changes less than the requests/s; NaN when unknown.
func pairedCPURatio(runs, bare []wrkResult) float64 {
	var v []float64
	for i := range min(len(runs), len(bare)) {
		if runs[i].cpu > 0 && bare[i].cpu > 0 {
			v = append(v, float64(bare[i].cpu)/float64(runs[i].cpu))
		}
	}
	return median(v)
}

// medianOf is the median over the runs of a CPU time per request.
func medianOf(runs []wrkResult, f func(wrkResult) time.Duration) time.Duration {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = float64(f(r))
	}
	return time.Duration(median(v)).Round(10 * time.Nanosecond)
}

func medianRate(runs []wrkResult) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = r.perSecond
	}
	return median(v)
}

func medianP99(runs []wrkResult) time.Duration {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = float64(r.p99)
	}
	return time.Duration(median(v)).Round(time.Microsecond)
}

// median of v (the mean of the middle two for an even count); NaN for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// envRatio reads a minimum ratio from the environment: 0 when unset.
func envRatio(t *testing.T, name string) float64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 10 {
		t.Fatalf("%s=%q: want a ratio such as 0.85", name, s)
	}
	return v
}

// envDuration reads a duration of whole seconds from the environment, at
// least 1 s and at most limit; def when unset.
func envDuration(t *testing.T, name string, def, limit time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < time.Second || v > limit || v%time.Second != 0 {
		t.Fatalf("%s=%q: want whole seconds from 1s to %v", name, s, limit)
	}
	return v
}

// envInt reads a count from the environment, from 1 to limit; def when
// unset.
func envInt(t *testing.T, name string, def, limit int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > limit {
		t.Fatalf("%s=%q: want a count from 1 to %d", name, s, limit)
	}
	return v
}

// writeArtifact writes a report into the artifact directory, where it
// outlives the run (go test shows a passing test's output only with -v).
func writeArtifact(t *testing.T, name, content string) {
	t.Helper()
	dir := artifactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("artifacts: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Errorf("artifacts: %v", err)
		return
	}
	t.Logf("written to %s", path)
}

// The binaries under measurement are built without the race detector even
// when the tests run with it (as ./scripts/test runs them): its
// instrumentation makes a program several times slower, which would measure
// the detector, not the broker. The broker's behaviour under the race
// detector is what the other tests check.

// buildPerfBroker returns a broker binary built without the race detector.
func buildPerfBroker(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return brokerBinary
	}
	return goBuild(t, "./cmd/oidc-broker", "oidc-broker")
}

// goBuild builds the main package pkg of this module, without the race
// detector, into the test's temporary directory and returns the binary's
// path. flags go to go build (such as -tags cpuprofile).
func goBuild(t *testing.T, pkg, name string, flags ...string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, flags...), "-o", bin, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// bareLine is what loadbare prints once it listens.
var bareLine = regexp.MustCompile(`^loadbare listening on (http://127\.0\.0\.1:\d+)$`)

// startBare runs the bare server (e2e/loadbare; cmd runs it with -listen
// 127.0.0.1:0, a free loopback port) and returns its URL and process ID.
// It is stopped with SIGTERM when the test ends, and must exit cleanly then,
// and not before.
func startBare(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	bin := cmd.Path
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	urls := make(chan string, 1)
	exited := make(chan struct{}) // closed when the process has exited; then waitErr is set
	var waitErr error
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := bareLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		waitErr = cmd.Wait() // after the last read: Wait closes the pipe
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			t.Errorf("loadbare exited during the test: %v\n%s", waitErr, stderr.String())
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("loadbare did not exit cleanly after SIGTERM: %v\n%s", waitErr, stderr.String())
			}
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("loadbare still ran %v after SIGTERM; killed it", stopTimeout)
		}
	})
	select {
	case u := <-urls:
		return u, cmd.Process.Pid
	case <-exited:
		t.Fatalf("loadbare exited before listening: %v\n%s", waitErr, stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("loadbare did not listen within %v", startTimeout)
	}
	return "", 0
}

// TestLoadFigures checks the harness's arithmetic: the paired ratio takes
// each round's bare run (not the medians), and the CPU time of a process
// grows with the work it does.
func TestLoadFigures(t *testing.T) {
	bare := []wrkResult{{perSecond: 100}, {perSecond: 50}, {perSecond: 200}}
	broker := []wrkResult{{perSecond: 95}, {perSecond: 45}, {perSecond: 150}}
	// Per round 0.95, 0.90 and 0.75; the ratio of the medians would be 0.95.
	if got := pairedRatio(broker, bare); math.Abs(got-0.9) > 1e-9 {
		t.Errorf("paired ratio %v, want 0.9", got)
	}
	bare = []wrkResult{{cpu: 10}, {cpu: 30}, {cpu: 20}}
	broker = []wrkResult{{cpu: 20}, {cpu: 25}, {cpu: 10}}
	// Per round 0.5, 1.2 and 2; the ratio of the medians would be 1.
	if got := pairedCPURatio(broker, bare); math.Abs(got-1.2) > 1e-9 {
		t.Errorf("paired CPU ratio %v, want 1.2", got)
	}
	if got := pairedCPURatio([]wrkResult{{cpu: 0}}, []wrkResult{{cpu: 10}}); !math.IsNaN(got) {
		t.Errorf("paired CPU ratio without CPU times %v, want NaN", got)
	}
	before, ok := processCPU(os.Getpid())
	if !ok {
		t.Fatal("no CPU time for this process")
	}
	// Work until the clock tick (10 ms of CPU) moves, for at most 5 s of
	// wall time: on a loaded machine 50 ms of wall time may get less.
	after := before
	for end := time.Now().Add(5 * time.Second); after <= before && time.Now().Before(end); {
		for spin := time.Now().Add(20 * time.Millisecond); time.Now().Before(spin); {
		}
		after, _ = processCPU(os.Getpid())
	}
	if after <= before {
		t.Errorf("CPU time %v, then %v after 5 s of work", before, after)
	}
	if _, ok := processCPU(-1); ok {
		t.Error("CPU time for a process that does not exist")
	}
}
