package broker

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/broker/metrics"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// cachePair is two replicas sharing one Redis, with session.cache_ttl ttl:
// A, the env's broker, and B. A has its own clock (aClock moves it), so
// that A alone finds the session's tokens expired.
type cachePair struct {
	a      *env
	aClock *atomic.Int64
	li     *logoutIssuer // A's IdP alpha sends back-channel logouts
	r      *redisserver.Server
	b      *Server
	bURL   string
	bStore *store.Redis
}

func newCachePair(t *testing.T, r *redisserver.Server, ttl time.Duration, opts ...envOption) *cachePair {
	t.Helper()
	r.Do("FLUSHALL") // another pair's spent logout-token jti, say
	var offset atomic.Int64
	a := newRedisEnv(t, r, append([]envOption{withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }),
		withScopes("offline_access"), withConfig(func(c *Config) { c.Session.CacheTTL = &ttl })}, opts...)...)
	p := &cachePair{a: a, aClock: &offset, li: newLogoutIssuer(a, "alpha"), r: r}
	cfg := a.server.cfg
	cfg.PublicURL = a.broker.URL // replicas behind one name; cookies are per host, not port
	b, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	srv := httptest.NewServer(b.Handler())
	t.Cleanup(srv.Close)
	rs := redisStoreOf(t, b)
	p.b, p.bURL, p.bStore = b, srv.URL, rs
	return p
}

// onB is a forward-auth check at B with the session cookie token, as a
// browser that kept it (or someone who stole it) sends it: a sign-out
// clears the browser's cookie, and the question is what B makes of the
// token.
func (p *cachePair) onB(token string) *http.Response {
	p.a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.bURL+"/oauth2/auth", nil)
	if err != nil {
		p.a.t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.a.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// cachedOnB makes B hold browser c's session in its cache, and returns its
// token: B subscribes on its first read, and caches from the next one on
// (once what was published before has come back to it).
func (p *cachePair) cachedOnB(t *testing.T, c *http.Client) string {
	t.Helper()
	token := p.a.sessionToken(c)
	onB := func() {
		if resp := p.onB(token); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("B before the change: %d", resp.StatusCode)
		}
	}
	waitFor(t, 5*time.Second, "B subscribed", func() bool { onB(); return p.bStore.Subscribed() })
	settle(t, p.r, p.bStore)
	onB()
	if !p.bStore.Cached(token) {
		t.Fatal("B did not cache the session")
	}
	return token
}

// refusedOnB waits, at most within, until B refuses token, and says how
// long that took.
func (p *cachePair) refusedOnB(t *testing.T, token string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code := p.onB(token).StatusCode
		if code == http.StatusUnauthorized {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("B still answers %d %v after the session ended on A", code, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// revocations end a signed-in browser's session on A.
var revocations = []struct {
	name   string
	login  func(p *cachePair) *http.Client
	revoke func(t *testing.T, p *cachePair, c *http.Client)
}{
	{"sign-out", func(p *cachePair) *http.Client { return p.a.loginAs("alpha", "alice", "") },
		func(t *testing.T, p *cachePair, c *http.Client) {
			if resp := p.a.signOut(c, "/"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out on A: %d", resp.StatusCode)
			}
		}},
	{"back-channel logout", func(p *cachePair) *http.Client { return p.a.loginAs("alpha", "alice", "idp-session-1") },
		func(t *testing.T, p *cachePair, _ *http.Client) {
			resp := p.a.postLogout("alpha", url.Values{"logout_token": {p.li.sign(t, p.li.claims("alpha-alice", "idp-session-1"), nil)}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("logout at A: %d %s", resp.StatusCode, body(resp))
			}
		}},
	{"refused refresh", func(p *cachePair) *http.Client { return p.a.loginAs("alpha", "alice", "") },
		func(t *testing.T, p *cachePair, c *http.Client) {
			p.a.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = func(c map[string]any) { c["sub"] = "alpha-bob" } })
			p.aClock.Store(int64(pastAccessToken)) // on A only
			if resp := p.a.do(c, http.MethodGet, p.a.broker.URL+"/oauth2/auth", nil); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("A after its refused refresh: %d", resp.StatusCode)
			}
		}},
}

// TestSessionCacheRevocation: a session that B holds in its cache, and that
// ends on A, is refused on B: within moments through the invalidation (a
// minute's time to live could not explain it), and within the time to live
// when the invalidations are lost.
func TestSessionCacheRevocation(t *testing.T) {
	r := redisserver.Start(t)
	for _, rv := range revocations {
		t.Run(rv.name+", published", func(t *testing.T) {
			p := newCachePair(t, r, time.Minute)
			c := rv.login(p)
			token := p.cachedOnB(t, c)
			rv.revoke(t, p, c)
			took := p.refusedOnB(t, token, 2*time.Second)
			t.Logf("refused on B %v after the %s on A", took, rv.name)
		})
		t.Run(rv.name+", invalidations lost", func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			p := newCachePair(t, r, ttl)
			c := rv.login(p)
			token := p.cachedOnB(t, c)
			p.bStore.LoseInvalidations(true)
			rv.revoke(t, p, c)
			// The bound is the time to live; the rest is slack for a busy
			// machine, well below the 5 s default.
			took := p.refusedOnB(t, token, ttl+700*time.Millisecond)
			t.Logf("refused on B %v after the %s on A, with a %v time to live", took, rv.name, ttl)
		})
	}
	// Control: with the invalidations lost and a long time to live, B keeps
	// the ended session; so the published case above is the invalidation's
	// work, and the lost case the time to live's.
	t.Run("control: lost, long time to live", func(t *testing.T) {
		p := newCachePair(t, r, time.Minute)
		c := p.a.loginAs("alpha", "alice", "")
		token := p.cachedOnB(t, c)
		p.bStore.LoseInvalidations(true)
		if resp := p.a.signOut(c, "/"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out on A: %d", resp.StatusCode)
		}
		time.Sleep(500 * time.Millisecond)
		if resp := p.onB(token); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("B answers %d: the session was not served from its cache, and the tests above prove less than they claim", resp.StatusCode)
		}
	})
}

// TestSessionCacheSeesCommits: a session B holds in its cache and A changes
// (a refresh with new groups) is seen changed on B through the
// invalidation. A login started on A completes on B even when B's cache
// missed the change: the login flow reads Redis, not the cache.
func TestSessionCacheSeesCommits(t *testing.T) {
	r := redisserver.Start(t)
	refreshOnA := func(t *testing.T, p *cachePair, c *http.Client) {
		t.Helper()
		groupsAtIdP(p.a.idps["alpha"].tamper, "refreshed")
		p.aClock.Store(int64(pastAccessToken))
		if got := p.a.do(c, http.MethodGet, p.a.broker.URL+"/oauth2/auth", nil).Header.Get(HeaderGroups); got != "refreshed" {
			t.Fatalf("groups on A after its refresh: %q", got)
		}
	}
	t.Run("published", func(t *testing.T) {
		p := newCachePair(t, r, time.Minute)
		c := p.a.loginAs("alpha", "alice", "")
		token := p.cachedOnB(t, c)
		if got := p.onB(token).Header.Get(HeaderGroups); got == "refreshed" {
			t.Fatalf("groups %q before the refresh", got)
		}
		refreshOnA(t, p, c)
		deadline := time.Now().Add(2 * time.Second)
		for p.onB(token).Header.Get(HeaderGroups) != "refreshed" {
			if time.Now().After(deadline) {
				t.Fatal("B still shows the old groups 2s after A committed the refresh")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("lost: the login flow reads Redis", func(t *testing.T) {
		p := newCachePair(t, r, time.Minute)
		c := p.a.loginAs("alpha", "alice", "")
		token := p.cachedOnB(t, c)
		p.bStore.LoseInvalidations(true)
		before := p.onB(token).Header.Get(HeaderGroups)
		refreshOnA(t, p, c)
		time.Sleep(300 * time.Millisecond)
		if got := p.onB(token).Header.Get(HeaderGroups); got != before {
			t.Fatalf("B shows %q: its cache was not used (the published case proves less than it claims)", got)
		}
		// A login started on A (its pending state is committed to the same
		// session) completes on B.
		cb := p.a.startLogin(c, "beta", "bob", "/after")
		resp := p.a.do(c, http.MethodGet, strings.Replace(cb.String(), p.a.broker.URL, p.bURL, 1), nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/after" {
			t.Fatalf("callback on B: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
		}
		if got := p.onB(p.a.sessionToken(c)).Header.Get(HeaderUser); got != "beta:beta-bob" {
			t.Errorf("after the login completed on B: %q", got)
		}
	})
}

// redisStoreOf is the Redis store of a broker on session.store: redis.
func redisStoreOf(t testing.TB, s *Server) *store.Redis {
	t.Helper()
	rs, ok := metrics.Unobserved(s.store).(*store.Redis)
	if !ok {
		t.Fatalf("the broker's store is a %T, not the Redis store", s.store)
	}
	return rs
}

// settle waits until the invalidations published so far on the default
// channel (and "t:invalidate") have reached c, which then is empty: a
// message that is no token's hash empties it, and Redis delivers in order.
func settle(t *testing.T, r *redisserver.Server, c *store.Redis) {
	t.Helper()
	flushes := c.Flushes
	before := flushes()
	for _, ch := range []string{DefaultRedisKeyPrefix + "invalidate", "t:invalidate"} {
		r.Do("PUBLISH", ch, "settle")
	}
	waitFor(t, 2*time.Second, "the invalidations delivered", func() bool { return flushes() > before })
}

// waitFor polls cond every 10 ms until it holds, for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionCacheSubscription: the cache is used only while subscribed. A
// lost subscription empties it at once and comes back by itself; Close ends
// it.
func TestSessionCacheSubscription(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	e.login("alpha", "alice", "/")
	rs := redisStoreOf(t, e.server)
	token := e.sessionToken(e.client)
	cached := func() bool { return rs.Cached(token) }
	waitFor(t, 5*time.Second, "the session cached", func() bool { return e.signedIn(e.client) && cached() })
	subscribers := func() int {
		list, _ := redis.String(r.Do("CLIENT", "LIST", "TYPE", "pubsub"), nil)
		return strings.Count(list, "id=")
	}
	if n := subscribers(); n != 1 {
		t.Fatalf("%d subscribed connections, want 1", n)
	}

	r.Do("CLIENT", "KILL", "TYPE", "pubsub")
	waitFor(t, 2*time.Second, "the cache emptied when its subscription was lost", func() bool { return !cached() })
	waitFor(t, 5*time.Second, "subscribed again", rs.Subscribed)
	waitFor(t, 2*time.Second, "the session cached again", func() bool { return e.signedIn(e.client) && cached() })

	if err := e.server.Close(); err != nil {
		t.Fatal(err)
	}
	if rs.Subscribed() {
		t.Error("the cache is on after Close")
	}
	waitFor(t, 2*time.Second, "no subscription left after Close", func() bool { return subscribers() == 0 })
}

// TestSessionCacheWithoutChannels: Redis refuses the broker its channels
// (a Redis 7 ACL user gets none unless granted): sessions work all the
// same, without the cache.
func TestSessionCacheWithoutChannels(t *testing.T) {
	r := redisserver.Start(t)
	r.Do("ACL", "SETUSER", "broker", "on", ">broker-password", "~*", "+@all", "resetchannels")
	c, err := redis.Dial("tcp", r.Addr, redis.DialUsername("broker"), redis.DialPassword("broker-password"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do("PUBLISH", DefaultRedisKeyPrefix+"invalidate", "x"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the ACL allows publishing (%v): this test proves nothing", err)
	}
	c.Close()

	e := newRedisEnv(t, r, withRedis(r, func(c *RedisConfig) { c.Username, c.Password = "broker", "broker-password" }))
	if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", resp.StatusCode, body(resp))
	}
	for range 3 {
		if !e.signedIn(e.client) {
			t.Fatal("not signed in")
		}
	}
	time.Sleep(300 * time.Millisecond) // a subscription would long be up
	if redisStoreOf(t, e.server).Subscribed() {
		t.Error("the cache is on without a subscription")
	}
	if resp := e.signOut(e.client, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if e.signedIn(e.client) {
		t.Error("still signed in after signing out")
	}
}
