package broker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
)

// withWebSockets puts a real WebSocket echo server at /ws/ behind the
// broker, and an app at /.
func withWebSockets(t *testing.T) envOption {
	ws := httptest.NewServer(wsecho.Handler())
	t.Cleanup(ws.Close)
	app := echoApp(t, "app")
	return withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}, {Path: "/ws/", URL: ws.URL}}
	})
}

// withCacheTTL sets session.cache_ttl, which is also the period of the
// tunnels' check against the store.
func withCacheTTL(d time.Duration) envOption {
	return withConfig(func(c *Config) { c.Session.CacheTTL = &d })
}

// tunnel is a WebSocket opened through the broker.
type tunnel struct {
	conn   *wsecho.Conn
	closed chan error
}

// openTunnel opens a WebSocket at wsURL with browser c's cookies and checks
// that it echoes.
func openTunnel(t *testing.T, c *http.Client, wsURL string) *tunnel {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	conn, resp, err := wsecho.Dial(ctx, nil, c.Jar, wsURL, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket %s: %v (status %d)", wsURL, err, status)
	}
	if _, err := conn.Hello(); err != nil {
		t.Fatal(err)
	}
	tn := &tunnel{conn: conn, closed: make(chan error, 1)}
	tn.echoes(t)
	return tn
}

// echoes checks that the tunnel is open: a message comes back.
func (tn *tunnel) echoes(t *testing.T) {
	t.Helper()
	if err := tn.conn.WriteText("ping"); err != nil {
		t.Fatalf("the WebSocket is closed: %v", err)
	}
	if got, err := tn.conn.ReadText(); err != nil || got != "ping" {
		t.Fatalf("the WebSocket does not echo: %q %v", got, err)
	}
}

// closedWithin waits until the tunnel is closed, at most d: the server sends
// nothing unasked, so a read returns only when the connection ends (the
// client's own context lasts as long as the test).
func (tn *tunnel) closedWithin(t *testing.T, d time.Duration, after string) {
	t.Helper()
	go func() {
		_, err := tn.conn.ReadText()
		tn.closed <- err
	}()
	select {
	case err := <-tn.closed:
		if err == nil {
			t.Fatal("the WebSocket sent a message instead of closing")
		}
	case <-time.After(d):
		t.Fatalf("the WebSocket is still open %v after the %s", d, after)
	}
}

// sessionEnds are the ways a signed-in browser's session ends on one
// broker: each signs a browser in (setup) and returns it with the function
// that ends its session.
var sessionEnds = []struct {
	name  string
	opts  []envOption
	setup func(t *testing.T, e *env, clock *atomic.Int64) (*http.Client, func())
}{
	{"sign-out", nil, func(t *testing.T, e *env, _ *atomic.Int64) (*http.Client, func()) {
		c := e.loginAs("alpha", "alice", "")
		return c, func() {
			if resp := e.signOut(c, "/"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out: %d", resp.StatusCode)
			}
		}
	}},
	{"back-channel logout", nil, func(t *testing.T, e *env, _ *atomic.Int64) (*http.Client, func()) {
		li := newLogoutIssuer(e, "alpha")
		c := e.loginAs("alpha", "alice", "idp-session-1")
		return c, func() {
			resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", "idp-session-1"), nil)}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d %s", resp.StatusCode, body(resp))
			}
		}
	}},
	{"refused refresh", []envOption{withScopes("offline_access")}, func(t *testing.T, e *env, clock *atomic.Int64) (*http.Client, func()) {
		c := e.loginAs("alpha", "alice", "")
		return c, func() {
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = func(c map[string]any) { c["sub"] = "alpha-bob" } })
			clock.Store(int64(pastAccessToken))
			if resp := e.do(c, http.MethodGet, e.broker.URL+"/oauth2/auth", nil); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("after the refused refresh: %d", resp.StatusCode)
			}
		}
	}},
}

// TestTunnelsEndWithTheSession: a WebSocket opened through the reverse proxy
// closes when its session ends by sign-out, back-channel logout or a
// refused refresh; at once, which the periodic check (a minute here) cannot
// explain. Another user's WebSocket stays open, and the registry forgets
// the closed tunnel.
func TestTunnelsEndWithTheSession(t *testing.T) {
	for _, end := range sessionEnds {
		t.Run(end.name, func(t *testing.T) {
			var offset atomic.Int64
			e := newEnv(t, append([]envOption{withWebSockets(t), withCacheTTL(time.Minute),
				withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })}, end.opts...)...)
			alice, endSession := end.setup(t, e, &offset)
			bob := e.loginAs("beta", "bob", "")
			aliceWS := openTunnel(t, alice, e.broker.URL+"/ws/chat")
			bobWS := openTunnel(t, bob, e.broker.URL+"/ws/chat")
			if s, n := e.server.tunnels.Size(); s != 2 || n != 2 {
				t.Fatalf("registry: %d sessions, %d tunnels; want 2, 2", s, n)
			}
			endSession()
			aliceWS.closedWithin(t, 2*time.Second, end.name)
			offset.Store(0)
			bobWS.echoes(t)
			waitFor(t, 2*time.Second, "the closed tunnel forgotten", func() bool {
				s, n := e.server.tunnels.Size()
				return s == 1 && n == 1
			})
		})
	}
}

// TestTunnelsEndWhenTheSessionExpires: a session that simply expires is
// found by the periodic check, within its period (session.cache_ttl).
func TestTunnelsEndWhenTheSessionExpires(t *testing.T) {
	const lifetime = 3 * time.Second
	e := newEnv(t, withWebSockets(t), withCacheTTL(100*time.Millisecond),
		withConfig(func(c *Config) { c.Session.Lifetime = lifetime }))
	e.login("alpha", "alice", "/")
	ws := openTunnel(t, e.client, e.broker.URL+"/ws/chat")
	ws.closedWithin(t, lifetime+2*time.Second, "session's expiry")
	if e.signedIn(e.client) {
		t.Error("the session has not expired: the tunnel closed for another reason")
	}
}

// TestTunnelsEndAcrossReplicas: with the Redis store, a session that ends on
// replica A closes the WebSocket that replica B holds: through the store's
// invalidation at once (B's periodic check is a minute away), and through
// B's periodic check within session.cache_ttl when B misses the
// invalidation.
func TestTunnelsEndAcrossReplicas(t *testing.T) {
	r := redisserver.Start(t)
	open := func(t *testing.T, p *cachePair, c *http.Client) *tunnel {
		t.Helper()
		ws := openTunnel(t, c, p.bURL+"/ws/chat")
		if s, n := p.b.tunnels.Size(); s != 1 || n != 1 {
			t.Fatalf("B's registry: %d sessions, %d tunnels; want 1, 1", s, n)
		}
		waitFor(t, 5*time.Second, "B subscribed to the invalidations", p.bStore.Subscribed)
		return ws
	}
	for _, rv := range revocations {
		t.Run(rv.name+", published", func(t *testing.T) {
			p := newCachePair(t, r, time.Minute, withWebSockets(t))
			c := rv.login(p)
			ws := open(t, p, c)
			rv.revoke(t, p, c)
			ws.closedWithin(t, 2*time.Second, rv.name+" on A")
		})
		t.Run(rv.name+", invalidations lost", func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			p := newCachePair(t, r, ttl, withWebSockets(t))
			c := rv.login(p)
			ws := open(t, p, c)
			p.bStore.LoseInvalidations(true)
			rv.revoke(t, p, c)
			ws.closedWithin(t, ttl+1500*time.Millisecond, rv.name+" on A")
		})
	}
	// Control: with the invalidations lost and a minute's period, B's
	// tunnel stays open; so the published case above is the
	// invalidation's work.
	t.Run("control: lost, long period", func(t *testing.T) {
		p := newCachePair(t, r, time.Minute, withWebSockets(t))
		c := p.a.loginAs("alpha", "alice", "")
		ws := open(t, p, c)
		p.bStore.LoseInvalidations(true)
		if resp := p.a.signOut(c, "/"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out on A: %d", resp.StatusCode)
		}
		time.Sleep(500 * time.Millisecond)
		ws.echoes(t)
	})
}
