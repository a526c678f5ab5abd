package upstream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// Tunnels (docs/integrations.md#websockets, docs/logout.md): a WebSocket
// that the reverse proxy opened for a signed-in session is closed when that
// session ends, as every later request of it would be refused.
//
// A tunnel is the proxied upgrade request, which lives as long as the
// connection: the broker registers its context under the session token
// (Open), and canceling that context makes httputil.ReverseProxy close
// both connections. Sessions end in three ways, and each closes the
// session's tunnels:
//
//   - ended on this replica (sign-out, back-channel logout, a refused
//     refresh: the session package tells the broker, which calls End): at
//     once;
//   - on another replica (Redis): the store's invalidation of the token
//     (Invalidated), which makes the session's tunnels be checked at once;
//   - expiry, a new sign-in that replaced the token, and an invalidation
//     that was missed: one loop checks every session with tunnels against
//     the store once per Interval (the session cache's time to live), the
//     bound a replica's cached sessions keep too.
//
// Memory follows the open tunnels: an entry goes when its tunnel closes,
// a session holds at most MaxTunnelsPerSession, and the loop runs only
// while there are tunnels.

const (
	// MaxTunnelsPerSession bounds one session's open tunnels; beyond it an
	// upgrade is refused with 429.
	MaxTunnelsPerSession = 100
	// tunnelCheckTimeout bounds one session's check against the store.
	tunnelCheckTimeout = 2 * time.Second
)

// ErrTooManyTunnels refuses a tunnel beyond MaxTunnelsPerSession;
// ErrTunnelsClosed one after CloseAll.
var (
	ErrTooManyTunnels = errors.New("upstream: too many open tunnels for one session")
	ErrTunnelsClosed  = errors.New("upstream: closed")
)

// TunnelsConfig configures the registry of tunnels.
type TunnelsConfig struct {
	// Interval is how often every session with tunnels is checked.
	Interval time.Duration
	// Alive reports whether the session of token still exists in the store.
	Alive func(ctx context.Context, token string) (bool, error)
	// Ended, when set, is called with the number of tunnels closed because
	// their session ended, and how it was noticed (a log line).
	Ended func(n int, why string)
	// Failed, when set, is called when a check could not read the store;
	// the tunnels stay open until a check can tell.
	Failed func(err error)
}

// Tunnels is the registry of open tunnels by session token. It is safe for
// concurrent use.
type Tunnels struct {
	interval  time.Duration
	alive     func(ctx context.Context, token string) (bool, error)
	ended     func(n int, why string)
	failed    func(err error)
	subscribe func() // Subscribe

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

// NewTunnels makes the registry of c.
func NewTunnels(c TunnelsConfig) *Tunnels {
	t := &Tunnels{interval: c.Interval, alive: c.Alive, ended: c.Ended, failed: c.Failed,
		sessions: map[string]*sessionTunnels{}, byHash: map[store.TokenHash]string{}, due: map[string]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if t.ended == nil {
		t.ended = func(int, string) {}
	}
	if t.failed == nil {
		t.failed = func(error) {}
	}
	return t
}

// Subscribe makes start, which starts the store's invalidations (Redis:
// store.Redis.Invalidations with Invalidated), run with the first tunnel
// (otherwise they start with the session cache's first read). Call it
// before the first Open.
func (t *Tunnels) Subscribe(start func()) { t.subscribe = start }

// Open registers a tunnel of the session token. The context it returns is
// canceled when the session ends; done removes the tunnel (and cancels the
// context), and may be called more than once.
func (t *Tunnels) Open(ctx context.Context, token string) (context.Context, func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil, nil, ErrTunnelsClosed
	}
	st := t.sessions[token]
	if st != nil && len(st.open) >= MaxTunnelsPerSession {
		return nil, nil, ErrTooManyTunnels
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

// End closes the tunnels of the session token, which ended, and reports
// how many there were.
func (t *Tunnels) End(token string) int {
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

func (t *Tunnels) forgetLocked(token string, st *sessionTunnels) {
	delete(t.sessions, token)
	delete(t.byHash, st.hash)
	delete(t.due, token)
}

// Invalidated is told of every invalidation of the Redis store: the
// session of the token with hash h was written or deleted, on this replica
// or another. When it has tunnels here, it is checked at once.
func (t *Tunnels) Invalidated(h store.TokenHash) {
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
// invalidated ones at once. It returns when there are no tunnels left (Open
// starts it again) or at CloseAll.
func (t *Tunnels) run() {
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
func (t *Tunnels) toCheck(all bool) []string {
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
func (t *Tunnels) check(token string, periodic bool) {
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
		if n := t.End(token); n > 0 {
			t.ended(n, why)
		}
	}
}

// CloseAll closes every tunnel and stops the loop; no tunnel opens after it
// (Close).
func (t *Tunnels) CloseAll() {
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
		t.End(token)
	}
}

// Size is the number of sessions with tunnels, and of tunnels.
func (t *Tunnels) Size() (sessions, open int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.sessions {
		open += len(st.open)
	}
	return len(t.sessions), open
}
