package broker

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Tunnels (docs/integrations.md#websockets, docs/logout.md): a WebSocket
// that the reverse proxy opened for a signed-in session is closed when that
// session ends, as every later request of it would be refused.
//
// A tunnel is the proxied upgrade request, which lives as long as the
// connection: serveUpstream registers its context under the session token
// (trackTunnel), and canceling that context makes httputil.ReverseProxy
// close both connections. Sessions end in three ways, and each closes the
// session's tunnels:
//
//   - revoke, which every sign-out, back-channel logout and refused
//     refresh on this replica goes through: at once;
//   - on another replica (Redis): the store's invalidation of the token
//     (package store), which makes the session's tunnels be checked at
//     once;
//   - expiry, a new sign-in that replaced the token, and an invalidation
//     that was missed: one loop checks every session with tunnels against
//     the store once per session.cache_ttl (DefaultCacheTTL when the cache
//     is off), the bound a replica's cached sessions keep too.
//
// Memory follows the open tunnels: an entry goes when its tunnel closes,
// a session holds at most maxTunnelsPerSession, and the loop runs only
// while there are tunnels.

const (
	// maxTunnelsPerSession bounds one session's open tunnels; beyond it an
	// upgrade is refused with 429.
	maxTunnelsPerSession = 100
	// tunnelCheckTimeout bounds one session's check against the store.
	tunnelCheckTimeout = 2 * time.Second
)

// errTooManyTunnels refuses a tunnel beyond maxTunnelsPerSession;
// errTunnelsClosed one after Close.
var (
	errTooManyTunnels = errors.New("broker: too many open tunnels for one session")
	errTunnelsClosed  = errors.New("broker: closed")
)

// tunnels is the registry of open tunnels by session token. It is safe for
// concurrent use.
type tunnels struct {
	interval time.Duration
	// alive reports whether the session of token still exists in the store.
	alive func(ctx context.Context, token string) (bool, error)
	// ended is called with the number of tunnels closed because their
	// session ended (a log line).
	ended func(n int, why string)
	// failed is called when a check could not read the store; the tunnels
	// stay open until a check can tell.
	failed func(err error)
	// subscribe, when set, starts the store's invalidations (which
	// otherwise start with the session cache's first read).
	subscribe func()

	mu       sync.Mutex
	sessions map[string]*sessionTunnels
	byHash   map[store.TokenHash]string // for invalidations, which name tokens by hash
	due      map[string]struct{}        // to check at once (invalidated)
	nextID   uint64
	running  bool          // the check loop runs
	wake     chan struct{} // due has entries (capacity 1)
	stop     chan struct{} // closed by closeAll
	stopped  bool
}

// sessionTunnels are one session's open tunnels, by id.
type sessionTunnels struct {
	hash store.TokenHash
	open map[uint64]context.CancelFunc
}

func newTunnels(interval time.Duration, alive func(context.Context, string) (bool, error)) *tunnels {
	return &tunnels{interval: interval, alive: alive, ended: func(int, string) {}, failed: func(error) {},
		sessions: map[string]*sessionTunnels{}, byHash: map[store.TokenHash]string{}, due: map[string]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// initTunnels sets up the registry of the process: checked against the
// session store within the session cache's time to live, and told of the
// Redis store's invalidations.
func (s *Server) initTunnels() {
	interval := s.cfg.Session.cacheTTL()
	if interval <= 0 {
		interval = DefaultCacheTTL
	}
	s.tunnels = newTunnels(interval, func(ctx context.Context, token string) (bool, error) {
		_, found, err := s.sessions.Backing().FindCtx(ctx, token) // never the token cache: a plain context
		return found, err
	})
	s.tunnels.ended = func(n int, why string) {
		s.log.Info("tunnels closed: their session ended", "tunnels", n, "how", why)
	}
	s.tunnels.failed = func(err error) { s.logStoreError(context.Background(), "tunnels: session store unavailable", err) }
	if rs, ok := unobserved(s.store).(*store.Redis); ok {
		s.tunnels.subscribe = rs.Invalidations(s.tunnels.invalidated)
	}
}

// trackTunnel registers r, when it asks to switch protocols for a session
// that is signed in, as a tunnel of that session: the request returned
// carries the context that ending the session cancels, and done must be
// called when the tunnel closes. Other requests pass unchanged (an upgrade
// to anything but a WebSocket reaches no app as one: proxy.go). ok is false
// when the session has too many tunnels already; trackTunnel answered then.
func (s *Server) trackTunnel(w http.ResponseWriter, r *http.Request) (_ *http.Request, done func(), ok bool) {
	if !isWebSocketUpgrade(r.Header) {
		return r, func() {}, true
	}
	ctx := r.Context()
	_, signedIn := IdentityFrom(ctx)
	_, basic := ctx.Value(basicIdentityKey{}).(providers.Identity)
	if !signedIn || basic { // anonymous, or HTTP Basic: no session to end
		return r, func() {}, true
	}
	token := s.sessions.Token(ctx) // signed in by the session: it is loaded
	if token == "" {
		return r, func() {}, true
	}
	tctx, done, err := s.tunnels.open(ctx, token)
	if err != nil {
		s.log.WarnContext(ctx, "tunnel refused", "error", err, "limit", maxTunnelsPerSession)
		if errors.Is(err, errTunnelsClosed) {
			jsonError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		} else {
			jsonError(w, http.StatusTooManyRequests, "too_many_connections")
		}
		return nil, nil, false
	}
	return r.WithContext(tctx), done, true
}

// endTunnels closes the tunnels of the session token, which ended on this
// replica (revoke).
func (s *Server) endTunnels(token string) {
	if n := s.tunnels.end(token); n > 0 {
		s.tunnels.ended(n, "ended here")
	}
}

// open registers a tunnel of the session token. The context it returns is
// canceled when the session ends; done removes the tunnel (and cancels the
// context), and may be called more than once.
func (t *tunnels) open(ctx context.Context, token string) (context.Context, func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil, nil, errTunnelsClosed
	}
	st := t.sessions[token]
	if st != nil && len(st.open) >= maxTunnelsPerSession {
		return nil, nil, errTooManyTunnels
	}
	if st == nil {
		st = &sessionTunnels{hash: store.HashOf(token), open: map[uint64]context.CancelFunc{}}
		t.sessions[token] = st
		t.byHash[st.hash] = token
	}
	tctx, cancel := context.WithCancel(ctx)
	t.nextID++
	id := t.nextID
	st.open[id] = cancel
	if !t.running {
		t.running = true
		if t.subscribe != nil {
			t.subscribe() // once; it only starts a goroutine
		}
		go t.run()
	}
	return tctx, func() {
		cancel()
		t.mu.Lock()
		defer t.mu.Unlock()
		if st := t.sessions[token]; st != nil {
			delete(st.open, id)
			if len(st.open) == 0 {
				t.forgetLocked(token, st)
			}
		}
	}, nil
}

// end closes the tunnels of the session token, which ended, and reports
// how many there were.
func (t *tunnels) end(token string) int {
	t.mu.Lock()
	st := t.sessions[token]
	if st != nil {
		t.forgetLocked(token, st)
	}
	t.mu.Unlock()
	if st == nil {
		return 0
	}
	for _, cancel := range st.open {
		cancel()
	}
	return len(st.open)
}

func (t *tunnels) forgetLocked(token string, st *sessionTunnels) {
	delete(t.sessions, token)
	delete(t.byHash, st.hash)
	delete(t.due, token)
}

// invalidated is told of every invalidation of the Redis store: the
// session of the token with hash h was written or deleted, on this replica
// or another. When it has tunnels here, it is checked at once.
func (t *tunnels) invalidated(h store.TokenHash) {
	t.mu.Lock()
	defer t.mu.Unlock()
	token, ok := t.byHash[h]
	if !ok {
		return
	}
	t.due[token] = struct{}{}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// run checks the sessions with tunnels: every one each interval, and
// invalidated ones at once. It returns when there are no tunnels left (open
// starts it again) or at closeAll.
func (t *tunnels) run() {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-t.stop:
			return
		case <-tick.C:
			all = true
		case <-t.wake:
		}
		for _, token := range t.toCheck(all) {
			t.check(token, all)
		}
		t.mu.Lock()
		if len(t.sessions) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// toCheck lists the tokens to check: all of them, or the due ones.
func (t *tunnels) toCheck(all bool) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var tokens []string
	if all {
		for token := range t.sessions {
			tokens = append(tokens, token)
		}
	} else {
		for token := range t.due {
			tokens = append(tokens, token)
		}
	}
	clear(t.due)
	return tokens
}

// check closes the tunnels of token when its session no longer exists.
func (t *tunnels) check(token string, periodic bool) {
	ctx, cancel := context.WithTimeout(context.Background(), tunnelCheckTimeout)
	defer cancel()
	alive, err := t.alive(ctx, token)
	switch {
	case err != nil:
		t.failed(err)
	case !alive:
		why := "deleted (invalidation)"
		if periodic {
			why = "expired, replaced or ended elsewhere (periodic check)"
		}
		if n := t.end(token); n > 0 {
			t.ended(n, why)
		}
	}
}

// closeAll closes every tunnel and stops the loop; no tunnel opens after it
// (Close).
func (t *tunnels) closeAll() {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		close(t.stop)
	}
	var tokens []string
	for token := range t.sessions {
		tokens = append(tokens, token)
	}
	t.mu.Unlock()
	for _, token := range tokens {
		t.end(token)
	}
}

// size is the number of sessions with tunnels, and of tunnels (tests).
func (t *tunnels) size() (sessions, open int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.sessions {
		open += len(st.open)
	}
	return len(t.sessions), open
}
