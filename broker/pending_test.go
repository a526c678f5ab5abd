package broker

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/broker/metrics"
	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/redirect"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// anonymousStarts is how many cookie-less starts the tests below make:
// before pending logins left the session, each one kept about 1.2 KB in
// memory (or 770 B in Redis) for a day.
const anonymousStarts = 20_000

// memoryHeld counts what the memory store keeps: sessions, index entries
// and marks.
func memoryHeld(t *testing.T, s *Server) (sessions, index, marks int) {
	t.Helper()
	var st scs.Store = s.sessions.Backing()
	for { // the revocation guard, the context adapter
		p, ok := st.(interface{ Unwrap() scs.Store })
		if !ok {
			break
		}
		st = p.Unwrap()
	}
	ms, ok := st.(*store.MemorySessions)
	mb, ok2 := metrics.Unobserved(s.store).(*store.MemoryBackend)
	if !ok || !ok2 {
		t.Fatalf("not the memory store: %T %T", st, s.store)
	}
	index, marks = mb.Sizes()
	return ms.Len(), index, marks
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// startAnonymously makes n cookie-less starts straight through the
// handler (no sockets: the test is about what the broker keeps).
func startAnonymously(t *testing.T, e *env, n int) {
	t.Helper()
	h := e.broker.Config.Handler
	for i := range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/start/alpha?rd=%2Fapp%2F"+fmt.Sprint(i), nil))
		if rec.Code != http.StatusFound || !strings.Contains(strings.Join(rec.Header().Values("Set-Cookie"), "\n"), pending.CookieInfix) {
			t.Fatalf("start %d: %d %v", i, rec.Code, rec.Header())
		}
	}
}

// TestAnonymousStartsKeepNothing: 20,000 cookie-less starts leave the
// memory store empty and the heap within a fixed bound.
func TestAnonymousStartsKeepNothing(t *testing.T) {
	e := newEnv(t)
	startAnonymously(t, e, 10) // discovery, the sealing secret, first-use caches
	dropLogs := func() {       // the test's log buffer is not the broker's memory
		e.logs.mu.Lock()
		e.logs.buf = bytes.Buffer{}
		e.logs.mu.Unlock()
	}
	dropLogs()
	before := heapInUse()
	startAnonymously(t, e, anonymousStarts)
	dropLogs()
	after := heapInUse()
	if s, i, m := memoryHeld(t, e.server); s+i+m != 0 {
		t.Errorf("after %d anonymous starts the store holds %d sessions, %d index keys, %d marks", anonymousStarts, s, i, m)
	}
	const bound = 4 << 20
	if after > before && after-before > bound {
		t.Errorf("heap grew by %d bytes over %d anonymous starts (bound %d)", after-before, anonymousStarts, bound)
	}
	t.Logf("heap before %d, after %d bytes", before, after)
}

// TestAnonymousStartsKeepNothingInRedis: 20,000 cookie-less starts write
// nothing to Redis but the sealing secret, made once.
func TestAnonymousStartsKeepNothingInRedis(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	startAnonymously(t, e, anonymousStarts)
	c, err := redis.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := redis.Strings(c.Do("KEYS", "*"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultRedisKeyPrefix + "secret:" + pending.SecretName
	if len(keys) != 1 || keys[0] != want {
		n := min(len(keys), 5)
		t.Fatalf("after %d anonymous starts Redis holds %d keys (%v...), want only %s", anonymousStarts, len(keys), keys[:n], want)
	}
}

// pendingCookieOf is the browser's pending-login cookie of the login whose
// callback is cb.
func pendingCookieOf(t *testing.T, e *env, c *http.Client, cb *url.URL) *http.Cookie {
	t.Helper()
	for _, ck := range c.Jar.Cookies(cb) {
		if ck.Name == DefaultCookieName+pending.CookieInfix+cb.Query().Get("state")[:pending.NameChars] {
			return ck
		}
	}
	t.Fatalf("no pending-login cookie for %s", cb)
	return nil
}

// bindingCookieOf is the browser binding cookie c holds for u.
func bindingCookieOf(t *testing.T, c *http.Client, u *url.URL) *http.Cookie {
	t.Helper()
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == DefaultCookieName+pending.BindingSuffix {
			return ck
		}
	}
	t.Fatalf("no browser binding cookie for %s", u)
	return nil
}

// TestPendingLoginCookie: the cookie is bound to its browser, its state and
// its value; it ends with the callback whatever the outcome.
func TestPendingLoginCookie(t *testing.T) {
	t.Run("planted in another browser (cookie tossing)", func(t *testing.T) {
		// The attacker starts a login of its own and signs in at the IdP,
		// then plants its pending-login cookie (a sibling subdomain can set
		// one) in the victim's browser and sends the victim to the callback.
		e := newEnv(t)
		attacker := newBrowser()
		cb := e.startLogin(attacker, "alpha", "bob", "/")
		planted := pendingCookieOf(t, e, attacker, cb)
		for _, victim := range []*http.Client{newBrowser(), e.client} {
			if victim == e.client { // a victim that has a binding cookie of its own
				e.startLogin(victim, "alpha", "alice", "/")
			}
			victim.Jar.SetCookies(cb, []*http.Cookie{planted})
			resp := e.do(victim, http.MethodGet, cb.String(), nil)
			if resp.StatusCode != http.StatusBadRequest || e.signedIn(victim) {
				t.Fatalf("planted cookie: %d, signed in %v", resp.StatusCode, e.signedIn(victim))
			}
			if logs := e.logs.String(); !strings.Contains(logs[strings.LastIndex(logs, "login refused"):], "started in another browser") {
				t.Errorf("the refusal does not say why:\n%s", logs[strings.LastIndex(logs, "login refused"):])
			}
		}
	})
	t.Run("tampered value", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		ck := pendingCookieOf(t, e, e.client, cb)
		b := []byte(ck.Value)
		b[len(b)/2] ^= 1
		ck.Value = string(b)
		e.client.Jar.SetCookies(cb, []*http.Cookie{ck})
		e.refused(e.get(cb.String()), http.StatusBadRequest, "unknown or replayed state")
	})
	t.Run("value moved to another login's name", func(t *testing.T) {
		e := newEnv(t)
		first := e.startLogin(e.client, "alpha", "alice", "/")
		other := newBrowser()
		second := e.startLogin(other, "alpha", "alice", "/")
		moved := pendingCookieOf(t, e, e.client, first)
		moved.Name = pendingCookieOf(t, e, other, second).Name
		other.Jar.SetCookies(second, []*http.Cookie{moved})
		e.refused(e.do(other, http.MethodGet, second.String(), nil), http.StatusBadRequest, "unknown or replayed state")
	})
	t.Run("the callback expires the cookie", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		resp := e.get(cb.String())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d %s", resp.StatusCode, body(resp))
		}
		if sc := pendingSetCookie(resp); !strings.Contains(sc, "Max-Age=0") {
			t.Errorf("the callback did not expire the pending-login cookie: %q", sc)
		}
	})
	t.Run("beyond eight logins in flight the oldest ends", func(t *testing.T) {
		e := newEnv(t)
		var cbs []*url.URL
		for range pending.MaxCookies + 1 {
			cbs = append(cbs, e.startLogin(e.client, "alpha", "alice", "/"))
		}
		u, _ := url.Parse(e.broker.URL + "/oauth2/callback/alpha")
		n := 0
		for _, ck := range e.client.Jar.Cookies(u) {
			if strings.Contains(ck.Name, pending.CookieInfix) {
				n++
			}
		}
		if n != pending.MaxCookies {
			t.Errorf("%d pending-login cookies, want %d", n, pending.MaxCookies)
		}
		e.refused(e.get(cbs[0].String()), http.StatusBadRequest, "unknown or replayed state")
		if resp := e.get(cbs[pending.MaxCookies].String()); resp.StatusCode != http.StatusFound {
			t.Errorf("newest login: %d %s", resp.StatusCode, body(resp))
		}
	})
	t.Run("long rds: the cookies stay under the byte bound", func(t *testing.T) {
		e := newEnv(t)
		rd := "/" + strings.Repeat("x", redirect.MaxLength-1)
		var cbs []*url.URL
		for range 4 {
			cbs = append(cbs, e.startLogin(e.client, "alpha", "alice", rd))
		}
		u, _ := url.Parse(e.broker.URL + "/oauth2/callback/alpha")
		n, size := 0, 0
		for _, ck := range e.client.Jar.Cookies(u) {
			if strings.Contains(ck.Name, pending.CookieInfix) {
				n, size = n+1, size+len(ck.Name)+len(ck.Value)
			}
		}
		if n < 1 || n > 2 || size > pending.MaxBytes || size/n > 4000 { // browsers keep cookies up to 4 KB
			t.Errorf("%d pending-login cookies of %d bytes, want 1 or 2 within %d", n, size, pending.MaxBytes)
		}
		if resp := e.get(cbs[len(cbs)-1].String()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != rd {
			t.Errorf("newest login: %d %s", resp.StatusCode, body(resp))
		}
	})
}

// TestStateSpentOnce: an IdP that redeems a code twice does not make a
// state complete two logins: the spent mark, written when the IdP
// accepted the code, refuses the second, here with a copy of the cookie in
// another browser. A callback the IdP refuses writes no mark at all.
//
// The mark is written by the session's commit, in the same step (with Redis
// in its script): both stores, and two replayed callbacks at once, of which
// at most one may sign in (none here: the victim's came first).
func TestStateSpentOnce(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			var e *env
			if store == "redis" {
				e = newRedisEnv(t, redisserver.Start(t))
			} else {
				e = newEnv(t)
			}
			e.idps["alpha"].tamper.Set(func(t *hostileidp.IdP) { t.ReplayCodes = true })
			cb := e.startLogin(e.client, "alpha", "alice", "/")
			copied := []*http.Cookie{pendingCookieOf(t, e, e.client, cb), bindingCookieOf(t, e.client, cb)}
			if resp := e.get(cb.String()); resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d %s", resp.StatusCode, body(resp))
			}
			thieves := []*http.Client{newBrowser(), newBrowser()} // with both cookies of the victim's browser
			var wg sync.WaitGroup
			for _, thief := range thieves {
				thief.Jar.SetCookies(cb, copied)
				wg.Go(func() {
					if resp := e.do(thief, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusBadRequest {
						t.Errorf("replayed callback: %d %s", resp.StatusCode, body(resp))
					}
				})
			}
			wg.Wait()
			if logs := e.logs.String(); !strings.Contains(logs[strings.LastIndex(logs, "login refused"):], "unknown or replayed state") {
				t.Errorf("the last refusal is not the replay:\n%s", logs)
			}
			for _, thief := range thieves {
				if e.signedIn(thief) {
					t.Error("the replayed state signed a second browser in")
				}
			}
			if !e.signedIn(e.client) {
				t.Error("the replays signed the victim out")
			}
		})
	}

	e := newEnv(t)
	forged := e.startLogin(e.client, "alpha", "alice", "/")
	q := forged.Query()
	q.Set("code", "not-a-code")
	e.refused(e.get(e.broker.URL+"/oauth2/callback/alpha?"+q.Encode()), http.StatusUnauthorized, "invalid_grant")
	if s, i, m := memoryHeld(t, e.server); s+i+m != 0 {
		t.Errorf("a refused callback left %d sessions, %d index keys, %d marks", s, i, m)
	}
}

// TestAnonymousRequestsStoreNothing is a property test: whatever an
// anonymous client sends, to any route, with any cookies, forms and
// headers, the store keeps nothing (no session, index entry or mark).
func TestAnonymousRequestsStoreNothing(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.Routes = []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}}
	}))
	h := e.broker.Config.Handler
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	// A real pending login of an anonymous client, to send back forged.
	start := httptest.NewRecorder()
	h.ServeHTTP(start, httptest.NewRequest(http.MethodGet, "/oauth2/start/alpha", nil))
	loc, _ := url.Parse(start.Header().Get("Location"))
	realState := loc.Query().Get("state")
	realCookie := strings.SplitN(pendingSetCookie(&http.Response{Header: start.Header()}), ";", 2)[0]
	for i := range 3000 {
		state := pick(realState, randomToken(), "", "x", realState[:pending.NameChars]+"-forged")
		path := pick("/oauth2/start/alpha", "/oauth2/start/beta", "/oauth2/start/nope",
			"/oauth2/callback/alpha", "/oauth2/callback/beta", "/oauth2/callback/nope",
			"/oauth2/sign_in", "/oauth2/sign_out", "/oauth2/signed_out/alpha", "/oauth2/auth", "/oauth2/userinfo",
			"/oauth2/backchannel_logout/alpha", "/oauth2/local/alpha", "/oauth2/jwks", "/", "/public/x", "/app")
		q := url.Values{}
		for range rng.IntN(4) {
			q.Set(pick("state", "code", "rd", "error", "iss", "remember", "login_hint"), pick(state, "1", "/x", "https://evil.example", randomToken()))
		}
		method := pick(http.MethodGet, http.MethodGet, http.MethodPost, http.MethodHead)
		var form string
		if method == http.MethodPost {
			form = url.Values{"csrf": {randomToken()}, "state": {state}, "logout_token": {"a.b.c"},
				"username": {"alice"}, "password": {"wrong"}, "rd": {"/x"}}.Encode()
		}
		req := httptest.NewRequest(method, path+"?"+q.Encode(), strings.NewReader(form))
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		switch rng.IntN(4) {
		case 0:
			req.Header.Set("Cookie", realCookie)
		case 1:
			req.Header.Set("Cookie", DefaultCookieName+"="+randomToken())
		case 2:
			req.Header.Set("Cookie", DefaultCookieName+pending.CookieInfix+state[:min(len(state), pending.NameChars)]+"="+randomToken())
		}
		if rng.IntN(3) == 0 {
			req.Header.Set("Accept", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(context.Background()))
		if s, idx, m := memoryHeld(t, e.server); s+idx+m != 0 {
			t.Fatalf("request %d (%s %s, %d) left %d sessions, %d index keys, %d marks", i, method, req.URL, rec.Code, s, idx, m)
		}
	}
}
