//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// TestRedisSentinelFailover runs a real Redis primary, a replica and three
// real sentinels (down-after 1 s), two real brokers that find the primary
// through the sentinels (with session.redis.wait on: one replica), and
// users who signed in through an IdP over HTTP. Then the primary dies
// (SIGKILL) or stalls (SIGSTOP, as a cut network would leave it), while
// every user's forward-auth check is asked on both brokers every 50 ms:
//
//   - the time protected requests answer 503 is measured and logged;
//   - no check ever answers another user's identity, nor a session after
//     its sign-out or back-channel logout was acknowledged;
//   - sessions whose login completed before the failure (the last one just
//     before) work on both brokers afterwards: none answers 401;
//   - a sign-out and a back-channel logout sent during the failover
//     (retried while they answer 503, as a user and an IdP would) and
//     after it end the session on both brokers;
//   - the old primary coming back, and the sentinels making it a replica,
//     changes nothing.
func TestRedisSentinelFailover(t *testing.T) {
	for _, mode := range []string{"kill", "stall"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testFailover(t, mode)
		})
	}
}

const failoverMaster = "e2emaster"

func testFailover(t *testing.T, mode string) {
	primary := redisserver.Start(t)
	replicaSrv := redisserver.StartWith(t, redisserver.Options{ReplicaOf: primary.Addr})
	waitUntil(t, 20*time.Second, "the replica in sync", func() bool { return linkUp(replicaSrv) })
	var sentinels []*redisserver.Sentinel
	var addrs []string
	for range 3 {
		s := redisserver.StartSentinel(t, redisserver.SentinelOptions{Master: failoverMaster, Primary: primary.Addr,
			DownAfter: time.Second, FailoverTimeout: 3 * time.Second})
		sentinels, addrs = append(sentinels, s), append(addrs, s.Addr)
	}
	waitUntil(t, 30*time.Second, "the sentinels know the replica and each other", func() bool {
		for _, s := range sentinels {
			m, _ := redis.StringMap(s.Do("SENTINEL", "master", failoverMaster), nil)
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})

	ports := freePorts(t, 2)
	public := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	op := fakeidp.NewKeycloak(fakeidp.Client{ID: idpClientID, Secret: idpClientSecret, RedirectURI: public + "/oauth2/callback/kc"}, "main")
	t.Cleanup(op.Close)
	names := []string{"erin", "frank", "alice", "bob", "carol", "dave", "gina"}
	for _, n := range names {
		op.AddUser(fakeidp.User{Login: n, Claims: map[string]any{"sub": "sub-" + n, "sid": "sid-" + n}})
	}
	dir := t.TempDir()
	reps := make([]*replica, 2)
	for i, name := range []string{"a", "b"} {
		reps[i] = &replica{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", ports[i]),
			config: writeSentinelConfig(t, filepath.Join(dir, name+".yaml"), ports[i], public, op.Issuer(""), addrs)}
	}
	startReplicas(t, reps)
	a, b := reps[0], reps[1]
	// Before the brokers stop (cleanups run last first): a connection the
	// clients dialed but never used would hold up their shutdown.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)

	users := map[string]*haUser{}
	for _, n := range names {
		users[n] = &haUser{name: n, want: "kc:sub-" + n, client: newRedisBrowser(t)}
		if n != "gina" {
			signInKC(t, users[n], a.url, public)
		}
	}
	// frank's sign-out is acknowledged before the failure: his session
	// must never come back.
	haSignOut(t, users["frank"], a.url, signOutCSRF(t, users["frank"].client, a.url))
	csrfAlice := signOutCSRF(t, users["alice"].client, a.url)
	signInKC(t, users["gina"], a.url, public) // the last login before the failure
	if p, r := sessionKeys(primary), sessionKeys(replicaSrv); !slices.Equal(p, r) {
		t.Fatalf("the replica holds sessions %v, the primary %v: with wait on, every completed login is on both", r, p)
	}

	pr := newFailoverProber(t, reps, users)
	defer pr.stop()
	time.Sleep(300 * time.Millisecond) // every check answers 202 or 401 before
	failedAt := time.Now()
	if mode == "kill" {
		primary.Kill()
	} else {
		primary.Pause()
		defer primary.Resume()
	}

	// During the failover: alice signs out on A, an IdP logs bob out
	// on B; both retry while the broker answers 503.
	var during sync.WaitGroup
	during.Go(func() { retrySignOut(t, users["alice"], a.url, csrfAlice) })
	during.Go(func() { retryBackchannel(t, op, users["bob"], b.url) })
	during.Wait()
	waitUntil(t, 30*time.Second, "a new primary", func() bool {
		return sentinels[0].MasterAddr(failoverMaster) == replicaSrv.Addr
	})
	promotedAt := time.Now()
	pr.waitRecovered(t, promotedAt, 30*time.Second)
	slow, slowAt := pr.slowest()
	outage := "none"
	if last := pr.last503(); !last.IsZero() {
		outage = "until +" + last.Sub(failedAt).Round(time.Millisecond).String()
	}
	t.Logf("%s: new primary seen %v after the failure; checks answered 503 %s (%d of %d checks); the slowest check took %v (started at +%v)",
		mode, promotedAt.Sub(failedAt).Round(time.Millisecond), outage, pr.count(503), pr.total(),
		slow.Round(time.Millisecond), slowAt.Sub(failedAt).Round(time.Millisecond))

	// After the failover: carol signs out on B, an IdP logs dave out on A.
	haSignOut(t, users["carol"], b.url, signOutCSRF(t, users["carol"].client, b.url))
	backchannel(t, op, users["dave"], a.url)
	for _, n := range []string{"alice", "bob", "carol", "dave", "frank"} {
		waitSignedOut(t, users[n], a, b)
	}
	for _, n := range []string{"erin", "gina"} {
		checkSignedIn(t, users[n].client, users[n].want, a, b)
	}

	// The old primary comes back; the sentinels make it a replica.
	backAt := time.Now()
	if mode == "kill" {
		primary.Restart()
	} else {
		primary.Resume()
	}
	waitUntil(t, 30*time.Second, "the old primary a replica of the new one", func() bool {
		role, err := redis.Values(primary.Try("ROLE"))
		if err != nil || len(role) == 0 { // it drops its clients as it becomes a replica
			return false
		}
		r, _ := redis.String(role[0], nil)
		return r == "slave" && linkUp(primary)
	})
	t.Logf("%s: the old primary was a replica in sync %v after it came back", mode, time.Since(backAt).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	pr.stop()
	for _, n := range []string{"erin", "gina"} {
		checkSignedIn(t, users[n].client, users[n].want, a, b)
	}
	for _, n := range []string{"alice", "bob", "carol", "dave", "frank"} {
		checkSignedOut(t, users[n].client, a, b)
	}
	signInKC(t, users["alice"], a.url, public) // logins work on the new primary
	checkSignedIn(t, users["alice"].client, users["alice"].want, a, b)
	pr.report(t, failedAt)
}

// haUser is a signed-in user with a browser-like client; revoked is set
// once the user's sign-out or back-channel logout was acknowledged.
type haUser struct {
	name, want string
	client     *http.Client
	revoked    atomic.Pointer[time.Time]
}

func (u *haUser) revokedNow() {
	now := time.Now()
	u.revoked.Store(&now)
}

func signInKC(t *testing.T, u *haUser, base, public string) {
	t.Helper()
	resp, body := fetch(t, u.client, http.MethodGet, base+"/oauth2/start/kc?rd=%2F&login_hint="+u.name, nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: start: %d\n%s", u.name, resp.StatusCode, body)
	}
	resp, body = fetch(t, u.client, http.MethodGet, resp.Header.Get("Location"), nil, nil)
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, public+"/oauth2/callback/kc?") {
		t.Fatalf("%s: authorize: %d %q\n%s", u.name, resp.StatusCode, cb, body)
	}
	if resp, body := fetch(t, u.client, http.MethodGet, strings.Replace(cb, public, base, 1), nil, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: callback: %d\n%s", u.name, resp.StatusCode, body)
	}
	u.revoked.Store(nil)
}

func haSignOut(t *testing.T, u *haUser, base, csrf string) {
	t.Helper()
	if resp, body := fetch(t, u.client, http.MethodPost, base+"/oauth2/sign_out", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: sign-out: %d\n%s", u.name, resp.StatusCode, body)
	}
	u.revokedNow()
}

func backchannel(t *testing.T, op *fakeidp.OP, u *haUser, base string) {
	t.Helper()
	form := url.Values{"logout_token": {op.LogoutToken("sub-"+u.name, "sid-"+u.name)}}
	if resp, body := fetch(t, &http.Client{}, http.MethodPost, base+"/oauth2/backchannel_logout/kc", form, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: back-channel logout: %d\n%s", u.name, resp.StatusCode, body)
	}
	u.revokedNow()
}

// retrySignOut posts the sign-out until the broker answers other than
// 503 (as a user would press the button again).
func retrySignOut(t *testing.T, u *haUser, base, csrf string) {
	retry(t, u.name+": sign-out", func() int {
		resp, err := postForm(u.client, base+"/oauth2/sign_out", url.Values{"csrf": {csrf}})
		if err != nil {
			return 0
		}
		return resp.StatusCode
	}, http.StatusSeeOther)
	u.revokedNow()
}

// retryBackchannel posts a logout token until the broker answers other
// than 503 (IdPs may retry; each try is a new token, as its jti is spent
// on the first).
func retryBackchannel(t *testing.T, op *fakeidp.OP, u *haUser, base string) {
	retry(t, u.name+": back-channel logout", func() int {
		resp, err := postForm(&http.Client{Timeout: 10 * time.Second}, base+"/oauth2/backchannel_logout/kc",
			url.Values{"logout_token": {op.LogoutToken("sub-"+u.name, "sid-"+u.name)}})
		if err != nil {
			return 0
		}
		return resp.StatusCode
	}, http.StatusOK)
	u.revokedNow()
}

func retry(t *testing.T, what string, try func() int, want int) {
	deadline := time.Now().Add(30 * time.Second)
	var statuses []int
	for {
		s := try()
		statuses = append(statuses, s)
		if s == want {
			t.Logf("%s: answered %v", what, statuses)
			return
		}
		if (s != 0 && s != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			t.Errorf("%s: answered %v, want 503s then %d", what, statuses, want)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postForm(c *http.Client, rawURL string, form url.Values) (*http.Response, error) {
	resp, err := c.PostForm(rawURL, form)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// waitSignedOut: the session ended on every replica (the invalidation
// reaches the other's cache within milliseconds).
func waitSignedOut(t *testing.T, u *haUser, reps ...*replica) {
	t.Helper()
	for _, r := range reps {
		waitUntil(t, 2*time.Second, u.name+" signed out on "+r.name, func() bool {
			resp, err := u.client.Get(r.url + "/oauth2/auth")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusUnauthorized
		})
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func linkUp(s *redisserver.Server) bool {
	info, _ := redis.String(s.Try("INFO", "replication"))
	return strings.Contains(info, "master_link_status:up")
}

func sessionKeys(s *redisserver.Server) []string {
	keys, _ := redis.Strings(s.Do("KEYS", "e2e:session:*"), nil)
	slices.Sort(keys)
	return keys
}

// writeSentinelConfig writes one broker's configuration: Redis through the
// sentinels, short timeouts, writes that wait for one replica.
func writeSentinelConfig(t *testing.T, path string, port int, public, issuer string, sentinels []string) string {
	t.Helper()
	conf := fmt.Sprintf(`listen: 127.0.0.1:%d
public_url: %q
session:
  store: redis
  redis:
    sentinel:
      addresses: ['%s']
      master: %s
    wait: {replicas: 1, timeout: 500ms}
    dial_timeout: 500ms
    read_timeout: 1s
    write_timeout: 500ms
    key_prefix: "e2e:"
log:
  level: debug
providers:
  - id: kc
    name: Keycloak
    issuer: %q
    client_id: %q
    client_secret: %q
`, port, public, strings.Join(sentinels, "', '"), failoverMaster, issuer, idpClientID, idpClientSecret)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
