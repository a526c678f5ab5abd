//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// The login load test: what a full login (start → the IdP's login form →
// callback → session) costs the broker, with the memory store and with
// Redis, against a demo IdP (e2e/loadidp) in a process of its own, so that
// the CPU time of the broker, of the IdP and of redis-server is each read
// from its own /proc/PID/stat. Pinned as the forward-auth test is
// (loadpin_test.go): the broker alone on one CPU, the IdP, redis-server and
// the clients on the other.
//
// loginClients clients sign in at once, each login in a new cookie jar, as
// new browsers do, each as the next of loginUsers users (so that no user
// gathers thousands of sessions, which would measure the per-user session
// index at a size no real user reaches); the clients share one keep-alive transport, so that
// their own connections are not what is measured. Each target gets a few
// logins to warm up (discovery, the IdP's keys, connections), then the
// rounds alternate the targets as in the forward-auth test. Every login
// must end with the broker's redirect to "/" and its session cookie.
const (
	loginClients = 8
	loginCount   = 400 // per target and round
	loginRounds  = 3
	loginWarmup  = 16
	loginUsers   = 1000
	// loginMaxCount bounds LOAD_LOGINS, and loginRoundLimit the time of
	// one target's round, whatever the count.
	loginMaxCount   = 5000
	loginRoundLimit = 60 * time.Second
)

// loginSecret is the client secret of the brokers at the load IdP.
const loginSecret = "load-login-secret"

// loginTarget is one broker under login load.
type loginTarget struct {
	name     string
	url      string
	pid      int
	redisPID int
	runs     []loginResult
}

// loginResult is what one round of logins measured.
type loginResult struct {
	logins   int
	elapsed  time.Duration
	broker   time.Duration // the broker's CPU time per login
	idp      time.Duration // the IdP's
	redis    time.Duration // redis-server's
	idpConns float64       // TCP connections to the IdP opened per login (all clients')
	redisOps float64       // commands redis-server processed per login
}

// TestLoadLogin measures full logins through the demo IdP, 8 at a time,
// on the broker binary with the memory store and with Redis, and reports
// logins/s and the CPU time per login of the broker, the IdP and
// redis-server, in the test's log and in perf-login.txt in the artifact
// directory. It fails when a login does not end signed in. LOAD_LOGINS
// (logins per target and round, at most 5000) and LOAD_LOGIN_ROUNDS change
// the length of the measurement; LOAD_BROKER_BEFORE adds another broker
// binary and LOAD_CPUPROFILE takes profiles (broker-memory-login.pprof,
// broker-redis-login.pprof), as in TestLoadForwardAuth.
func TestLoadLogin(t *testing.T) {
	count := envInt(t, "LOAD_LOGINS", loginCount, loginMaxCount)
	rounds := envInt(t, "LOAD_LOGIN_ROUNDS", loginRounds, loadMaxRounds)
	profileDir := os.Getenv("LOAD_CPUPROFILE")
	plan := planCPUs(t)
	broker := buildPerfBroker(t)
	if profileDir != "" {
		broker = goBuild(t, "./cmd/oidc-broker", "oidc-broker", "-tags", "cpuprofile")
	}
	rs := redisserver.Start(t)
	plan.away(t, rs.PID())

	type spec struct {
		name, bin string
		redis     bool
	}
	specs := []spec{{"broker-memory", broker, false}, {"broker-redis", broker, true}}
	if before := os.Getenv("LOAD_BROKER_BEFORE"); before != "" {
		specs = append(specs, spec{"before-memory", before, false}, spec{"before-redis", before, true})
	}
	ports := freePorts(t, len(specs))
	redirects := make([]string, len(specs))
	for i, p := range ports {
		redirects[i] = fmt.Sprintf("http://127.0.0.1:%d/oauth2/callback/idp", p)
	}
	issuer, idpPID := startLoadIdP(t, plan, goBuild(t, "./e2e/loadidp", "loadidp"), redirects)

	dir := t.TempDir()
	var targets []*loginTarget
	for i, sp := range specs {
		extra, redisPID := "", 0
		if sp.redis {
			extra, redisPID = fmt.Sprintf("session:\n  store: redis\n  redis:\n    address: %q\n", rs.Addr), rs.PID()
		}
		conf := writeLoginConfig(t, filepath.Join(dir, sp.name+".yaml"), ports[i], issuer, extra)
		var env []string
		if profileDir != "" && strings.HasPrefix(sp.name, "broker-") {
			env = append(env, "OIDC_BROKER_CPUPROFILE="+filepath.Join(profileDir, sp.name+"-login.pprof"))
		}
		b, _ := startServeCmd(t, plan.serverCommand(env, sp.bin, "serve", "--config", conf))
		targets = append(targets, &loginTarget{name: sp.name, url: b.URL, pid: b.cmd.Process.Pid, redisPID: redisPID})
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Duration(len(targets)*(rounds+1))*loginRoundLimit)
	defer cancel()
	idpPort := portOf(t, issuer)
	for _, tg := range targets {
		runLogins(ctx, t, tg, rs, idpPID, idpPort, loginWarmup)
	}
	for round := range rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, tg := range order {
			tg.runs = append(tg.runs, runLogins(ctx, t, tg, rs, idpPID, idpPort, count))
		}
	}
	report := loginReport(plan, targets, count, rounds)
	t.Log("\n" + report)
	writeArtifact(t, "perf-login.txt", report)
}

// writeLoginConfig writes a broker configuration for the login test: the
// port, the load IdP as provider "idp" (client "load"), and more YAML at
// the top level.
func writeLoginConfig(t *testing.T, path string, port int, issuer, extra string) string {
	t.Helper()
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
%sproviders:
  - id: idp
    name: Load IdP
    issuer: %q
    client_id: load
    client_secret: %q
    scopes: [openid, email, profile, groups]
`, port, extra, issuer, loginSecret)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runLogins signs in n times at tg, loginClients at once, and measures.
func runLogins(ctx context.Context, t *testing.T, tg *loginTarget, rs *redisserver.Server, idpPID, idpPort, n int) loginResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, loginRoundLimit)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * loginClients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	b0, _ := processCPU(tg.pid)
	i0, _ := processCPU(idpPID)
	r0, _ := processCPU(tg.redisPID)
	c0, ops0 := connectionsTo(idpPort), redisCommands(t, rs)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loginClients)
	for range loginClients {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := login(ctx, tr, tg.url, fmt.Sprintf("user%04d", loginUser.Add(1)%loginUsers)); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("%s: %v", tg.name, err)
	}
	b1, _ := processCPU(tg.pid)
	i1, _ := processCPU(idpPID)
	r1, _ := processCPU(tg.redisPID)
	per := func(d time.Duration) time.Duration { return d / time.Duration(n) }
	res := loginResult{logins: n, elapsed: elapsed, broker: per(b1 - b0), idp: per(i1 - i0), redis: per(r1 - r0),
		idpConns: float64(connectionsTo(idpPort)-c0) / float64(n)}
	if tg.redisPID != 0 {
		res.redisOps = float64(redisCommands(t, rs)-ops0-1) / float64(n) // less the INFO that reads the count
	}
	return res
}

// redisCommands is the count of commands redis-server has processed
// (INFO stats: total_commands_processed), this INFO included.
func redisCommands(t *testing.T, rs *redisserver.Server) int64 {
	t.Helper()
	info, _ := rs.Do("INFO", "stats").([]byte)
	for line := range strings.SplitSeq(string(info), "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	t.Fatalf("redis INFO stats without total_commands_processed:\n%s", info)
	return 0
}

// loginUser counts the logins of the test, for the next user's name.
var loginUser atomic.Int64

// login signs in once at the broker at base as user, as a new browser:
// start, the IdP's authorization endpoint and login form, the callback; it
// must end with a redirect to "/" and the session cookie.
func login(ctx context.Context, tr http.RoundTripper, base, user string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: tr, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	loc, err := url.Parse(base + "/oauth2/start/idp?rd=%2F")
	if err != nil {
		return err
	}
	for range 8 {
		var req *http.Request
		if loc.Path == "/login" {
			form := url.Values{"id": {loc.Query().Get("authRequestID")}, "username": {user}, "password": {demo.DemoPassword}}
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, loc.Scheme+"://"+loc.Host+"/login", strings.NewReader(form.Encode()))
			if req != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
		}
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("login at %s: status %d\n%s", loc.Redacted(), resp.StatusCode, body)
		}
		next, err := loc.Parse(resp.Header.Get("Location"))
		if err != nil {
			return fmt.Errorf("login at %s: Location: %w", loc.Redacted(), err)
		}
		if strings.HasPrefix(loc.Path, "/oauth2/callback/") {
			if next.String() != base+"/" && next.String() != "/" && next.Path != "/" {
				return fmt.Errorf("callback: redirect to %s, want /", next)
			}
			for _, ck := range jar.Cookies(loc) {
				if ck.Name == "oidc_broker" {
					return nil
				}
			}
			return errors.New("callback: no session cookie")
		}
		loc = next
	}
	return errors.New("login: too many redirects")
}

// connectionsTo counts the TCP sockets on 127.0.0.1 whose remote port is
// port, in any state (TIME_WAIT included: a closed connection stays there
// for a minute), from /proc/net/tcp: its growth over a round of a few
// seconds is the number of connections opened to that port. -1 on Linux
// without /proc.
func connectionsTo(port int) int {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && strings.HasSuffix(fields[2], want) {
			n++
		}
	}
	return n
}

// portOf is the port of a URL such as http://127.0.0.1:4000.
func portOf(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("no port in %s", raw)
	}
	return p
}

// idpLine is what loadidp prints once it listens.
var idpLine = regexp.MustCompile(`^loadidp listening on (http://127\.0\.0\.1:\d+)$`)

// startLoadIdP runs e2e/loadidp on the other CPUs for the given redirect
// URIs and returns its issuer and process ID. It is stopped with SIGTERM
// when the test ends.
func startLoadIdP(t *testing.T, plan cpuPlan, bin string, redirects []string) (string, int) {
	t.Helper()
	cmd := plan.command(plan.others, bin, "-listen", "127.0.0.1:0", "-secret", loginSecret, "-redirect", strings.Join(redirects, ","),
		"-users", strconv.Itoa(loginUsers))
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
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := idpLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("loadidp stderr:\n%s", stderr.String())
		}
	})
	select {
	case u := <-urls:
		return u, cmd.Process.Pid
	case <-exited:
		t.Fatalf("loadidp exited before listening:\n%s", stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("loadidp did not listen within %v", startTimeout)
	}
	return "", 0
}

// loginReport is the summary table of the login test.
func loginReport(plan cpuPlan, targets []*loginTarget, count, rounds int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "login load: full logins (start, IdP form, callback, session) through the demo IdP in its own process,\n")
	fmt.Fprintf(&b, "%d clients at once as %d users in turn, %d logins per target and round, %d interleaved rounds after %d warm-up logins;\n",
		loginClients, loginUsers, count, rounds, loginWarmup)
	fmt.Fprintf(&b, "%d CPUs, %s/%s, %s\n%s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), plan)
	b.WriteString("CPU per login: medians over the rounds of each process's CPU time (user and system) over its logins;\n")
	b.WriteString("IdP conns: TCP connections opened to the IdP per login (the broker's and the clients'); redis ops: commands per login\n")
	fmt.Fprintf(&b, "%-14s %9s %11s %11s %11s %13s %10s %10s\n", "target", "logins/s", "broker CPU", "+ redis", "IdP CPU", "broker+redis",
		"IdP conns", "redis ops")
	for _, tg := range targets {
		med := func(f func(loginResult) float64) float64 {
			v := make([]float64, len(tg.runs))
			for i, r := range tg.runs {
				v[i] = f(r)
			}
			return median(v)
		}
		dur := func(f func(loginResult) time.Duration) time.Duration {
			return time.Duration(med(func(r loginResult) float64 { return float64(f(r)) })).Round(time.Microsecond)
		}
		redis, ops := "-", "-"
		if tg.redisPID != 0 {
			redis = dur(func(r loginResult) time.Duration { return r.redis }).String()
			ops = fmt.Sprintf("%.1f", med(func(r loginResult) float64 { return r.redisOps }))
		}
		fmt.Fprintf(&b, "%-14s %9.0f %11v %11s %11v %13v %10.2f %10s\n", tg.name,
			med(func(r loginResult) float64 { return float64(r.logins) / r.elapsed.Seconds() }),
			dur(func(r loginResult) time.Duration { return r.broker }), redis,
			dur(func(r loginResult) time.Duration { return r.idp }),
			dur(func(r loginResult) time.Duration { return r.broker + r.redis }),
			med(func(r loginResult) float64 { return r.idpConns }), ops)
	}
	return b.String()
}
