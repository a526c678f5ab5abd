package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"math/bits"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gomodule/redigo/redis"
)

// CacheBytes is each session cache's memory budget (this package's token
// cache, the session package's decode cache): the heap its entries keep,
// all counted (tokens, sessions, decoded values, map slots), so the two
// keep at most 16 MiB together. With sessions of about 1 KB, the token
// cache holds about 6,000 and the decode cache about 1,300. Both drop what
// has expired besides.
const CacheBytes = 8 << 20

// MaxCachedSession: larger sessions are not cached (one would push out
// dozens of others).
const MaxCachedSession = 64 << 10

// TokenHash names a session token on the invalidation channel: the first
// 16 bytes of its SHA-256, so that the channel never carries tokens.
type TokenHash [16]byte

// HashOf is the hash of token.
func HashOf(token string) TokenHash {
	sum := sha256.Sum256([]byte(token))
	return TokenHash(sum[:16])
}

// cacheStripes: invalidations of unrelated tokens do not spoil each other's
// reservations (see reserve).
const cacheStripes = 64

// tokenCache holds encoded sessions by token for a short time. It is safe
// for concurrent use.
//
// A read that fills the cache can race with an invalidation: a replica
// reads the old session, another writes a new one and publishes, the
// invalidation arrives, and only then would the old bytes be stored. So a
// read reserves before it asks Redis, every invalidation and every flush
// bumps a counter (per stripe of tokens, and one for flushes), and fill
// stores nothing when a counter moved since the reservation.
type tokenCache struct {
	ttl time.Duration
	max int // bytes of sessions
	now func() time.Time

	mu      sync.RWMutex
	up      bool // the subscription is up: the cache may be used
	entries map[string]cachedSession
	byHash  map[TokenHash]string
	size    int // heap bytes (cachedSession.cost)
	flushes uint64
	epochs  [cacheStripes]uint64
	swept   time.Time // sweepLocked
}

type cachedSession struct {
	b       []byte
	expires time.Time
	hash    TokenHash
	cost    int // heap bytes counted against max: entryCost
}

// MapSlots is how many slots (key, value and a control byte each) a map
// that entries are added to and deleted from may keep per entry: its load
// factor, growth by doubling, and deleted slots not yet reused (measured:
// about 3.2).
const MapSlots = 4

// tokenEntryOverhead is what an entry costs besides its token and session:
// its slots in entries and byHash.
const tokenEntryOverhead = MapSlots * (int(unsafe.Sizeof("")) + int(unsafe.Sizeof(cachedSession{})) + 1 +
	int(unsafe.Sizeof(TokenHash{})) + int(unsafe.Sizeof("")) + 1)

// entryCost is the heap an entry of token and b keeps: the two arrays and
// the map slots.
func entryCost(token string, b []byte) int {
	return AllocSize(len(token)) + AllocSize(cap(b)) + tokenEntryOverhead
}

// AllocSize is the heap an allocation of n bytes takes, or a little more:
// rounded up to 8 bytes up to 16, 16 up to 128, then to an eighth of the
// next power of two (Go's size classes are spaced about that far apart).
func AllocSize(n int) int {
	switch {
	case n <= 0:
		return 0
	case n <= 16:
		return (n + 7) &^ 7
	case n <= 128:
		return (n + 15) &^ 15
	}
	step := 1 << (bits.Len(uint(n-1)) - 3)
	return (n + step - 1) &^ (step - 1)
}

func newTokenCache(ttl time.Duration, maxBytes int, now func() time.Time) *tokenCache {
	return &tokenCache{ttl: ttl, max: maxBytes, now: now,
		entries: map[string]cachedSession{}, byHash: map[TokenHash]string{}}
}

// find returns the cached session of token. The bytes are shared: callers
// must not modify them.
func (c *tokenCache) find(token string) ([]byte, bool) {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.b, true
}

// reservation is what a read of token may later store (fill).
type reservation struct {
	ok      bool // false: store nothing
	token   string
	hash    TokenHash
	flushes uint64
	epoch   uint64
}

// reserve must be called before the read whose result fill stores.
func (c *tokenCache) reserve(token string) reservation {
	h := HashOf(token)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.up {
		return reservation{}
	}
	return reservation{ok: true, token: token, hash: h, flushes: c.flushes, epoch: c.epochs[h[0]%cacheStripes]}
}

// fill stores b, read under r, for the cache's time to live or the key's
// remaining life left, whichever is shorter; nothing when the subscription
// went down or the token was invalidated since r.
func (c *tokenCache) fill(r reservation, b []byte, left time.Duration) {
	if !r.ok || left <= 0 || len(b) > MaxCachedSession {
		return
	}
	// The token is a copy: the request's may be part of its whole Cookie
	// header, which the cache would keep alive.
	token := strings.Clone(r.token)
	now := c.now()
	e := cachedSession{b: b, expires: now.Add(min(c.ttl, left)), hash: r.hash, cost: entryCost(token, b)}
	if e.cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up || c.flushes != r.flushes || c.epochs[r.hash[0]%cacheStripes] != r.epoch {
		return
	}
	c.removeLocked(token)
	c.sweepLocked(now)
	for t := range c.entries {
		if c.size+e.cost <= c.max {
			break
		}
		c.removeLocked(t)
	}
	c.entries[token] = e
	c.byHash[e.hash] = token
	c.size += e.cost
}

// sweepLocked drops the expired entries, at most once per time to live:
// an entry lives at most that long, so the cache holds at most what was
// read in two of them, not whatever filled it since it was last full.
func (c *tokenCache) sweepLocked(now time.Time) {
	if now.Sub(c.swept) < c.ttl {
		return
	}
	c.swept = now
	n := len(c.entries)
	for t, e := range c.entries {
		if !now.Before(e.expires) {
			c.removeLocked(t)
		}
	}
	if len(c.entries) < n/2 { // a map's table never shrinks: make them anew
		entries, byHash := make(map[string]cachedSession, len(c.entries)), make(map[TokenHash]string, len(c.byHash))
		maps.Copy(entries, c.entries)
		maps.Copy(byHash, c.byHash)
		c.entries, c.byHash = entries, byHash
	}
}

// invalidate drops the session of the token with hash h, and spoils the
// reservations of reads in flight that it may concern.
func (c *tokenCache) invalidate(h TokenHash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epochs[h[0]%cacheStripes]++
	if t, ok := c.byHash[h]; ok {
		c.removeLocked(t)
	}
}

func (c *tokenCache) removeLocked(token string) {
	if e, ok := c.entries[token]; ok {
		delete(c.entries, token)
		delete(c.byHash, e.hash)
		c.size -= e.cost
	}
}

// setUp records whether the subscription is up. Either way the cache starts
// empty: while it was down, or before it was up, invalidations were lost.
func (c *tokenCache) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.up = up
	c.flushes++
	c.entries, c.byHash, c.size = map[string]cachedSession{}, map[TokenHash]string{}, 0
}

func (c *tokenCache) isUp() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.up
}

// cachedReadKey marks the context of the one store read that may be
// answered from the token cache: sessions.load's read of the request's own
// session on forward-auth and the app's routes, which only read it (not
// with an idle timeout, where every request writes it back). Every other
// read goes to Redis: the login flow and sign-out, which write the session
// back; a refresh that must see what another replica just wrote; a
// back-channel logout looking sessions up.
type cachedReadKey struct{}

func WithCachedRead(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, cachedReadKey{}, token)
}

func cachedRead(ctx context.Context, token string) bool {
	t, ok := ctx.Value(cachedReadKey{}).(string)
	return ok && t == token
}

// Timing of the subscription.
const (
	// subscriptionPing: the subscribed connection is pinged this often, and
	// declared dead when nothing (message or pong) came for this plus the
	// read timeout.
	subscriptionPing = time.Second
	// subscriptionBackoff doubles from its first value up to its last
	// between attempts to subscribe.
	subscriptionBackoffMin = 100 * time.Millisecond
	subscriptionBackoffMax = 5 * time.Second
)

// invalidations keeps a tokenCache's subscription to the store's
// invalidation channel, on a connection of its own (a subscribed connection
// can do nothing else), and hands every message to the cache. It starts on
// first use (start) and runs until stop.
type invalidations struct {
	cache   *tokenCache
	channel string
	// dial connects, within its own time limit; raw is the network
	// connection under c, which stop closes to end a receive at once.
	dial func(ctx context.Context) (c redis.Conn, raw net.Conn, err error)
	read time.Duration // the configured read timeout
	ping time.Duration
	log  *slog.Logger
	errs ErrorLog
	// lose drops every message that arrives (tests: invalidations lost
	// while the subscription stays up, so that only the TTL bounds).
	lose atomic.Bool
	// notify, when set, is told of every token invalidated (Invalidations);
	// set before the subscription starts.
	notify func(TokenHash)

	rawMu sync.Mutex
	raw   net.Conn // the subscribed connection, closed by restart

	once   sync.Once
	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	done   chan struct{}
}

func newInvalidations(cache *tokenCache, channel string, read time.Duration, log *slog.Logger,
	dial func(ctx context.Context) (redis.Conn, net.Conn, error)) *invalidations {
	ctx, cancel := context.WithCancel(context.Background())
	return &invalidations{cache: cache, channel: channel, dial: dial, read: read, ping: subscriptionPing, log: log,
		errs: ErrorLog{Interval: time.Minute}, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start runs the subscription in the background, once, unless stopped.
func (v *invalidations) start() {
	v.once.Do(func() {
		if v.ctx.Err() != nil {
			close(v.done)
			return
		}
		go v.run()
	})
}

// stop ends the subscription and waits, boundedly, until it has: the
// connection is closed at once, which ends the receive.
func (v *invalidations) stop() {
	v.cancel()
	v.once.Do(func() { close(v.done) }) // never started
	select {
	case <-v.done:
	case <-time.After(v.ping + v.read):
		v.log.Warn("session cache: the subscription did not stop in time")
	}
}

// restart empties the cache and ends the subscription, which run makes
// again (on the new primary, after a failover: invalidations published on
// the old one may be lost).
func (v *invalidations) restart() {
	v.cache.setUp(false)
	v.rawMu.Lock()
	defer v.rawMu.Unlock()
	if v.raw != nil {
		_ = v.raw.Close()
	}
}

// run subscribes again after every failure, with bounded backoff, until
// stop. While it is not subscribed the cache is off (flushed, unused).
func (v *invalidations) run() {
	defer close(v.done)
	backoff := subscriptionBackoffMin
	for {
		subscribed, err := v.subscribe()
		v.cache.setUp(false)
		if v.ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = subscriptionBackoffMin
			v.log.Warn("session cache off: the subscription to the store's invalidations was lost", "error", err)
		} else if ok, skipped := v.errs.Allow(time.Now()); ok {
			v.log.Warn("session cache off: cannot subscribe to the store's invalidations", "error", err,
				"retry_in", backoff, "similar_errors_not_logged", skipped)
		}
		select {
		case <-v.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, subscriptionBackoffMax)
	}
}

// subscribe holds one subscription until its connection fails or stop, and
// reports whether the subscription was made. A connection that brings
// nothing (no message, no answer to the pings) for a ping interval and a
// read timeout is dead.
func (v *invalidations) subscribe() (bool, error) {
	c, raw, err := v.dial(v.ctx)
	if err != nil {
		return false, err
	}
	psc := redis.PubSubConn{Conn: c}
	defer psc.Close()
	v.rawMu.Lock()
	v.raw = raw
	v.rawMu.Unlock()
	if err := psc.Subscribe(v.channel); err != nil {
		return false, err
	}
	defer keepAlive(v.ctx, psc, raw, v.ping)()
	subscribed := false
	for {
		switch m := psc.ReceiveWithTimeout(v.ping + v.read).(type) {
		case redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == v.channel && !subscribed {
				subscribed = true
				v.cache.setUp(true)
			}
		case redis.Message:
			if !v.lose.Load() {
				v.deliver(m.Data)
			}
		case redis.Pong:
		case error:
			if v.ctx.Err() != nil {
				return subscribed, nil
			}
			return subscribed, m
		}
	}
}

// deliver hands one message to the cache. One that is not a token's hash
// (someone else's) empties the cache: dropping everything is always safe.
func (v *invalidations) deliver(data []byte) {
	var h TokenHash
	if len(data) != hex.EncodedLen(len(h)) {
		v.cache.setUp(true)
		return
	}
	if _, err := hex.Decode(h[:], data); err != nil {
		v.cache.setUp(true)
		return
	}
	v.cache.invalidate(h)
	if v.notify != nil {
		v.notify(h)
	}
}

// String is the hash as published: lower-case hex.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// keepAlive pings a subscription every interval until the returned stop is
// called, so that a dead connection is noticed within a ping and a read
// timeout. When ctx ends, or a ping fails, it closes raw, which ends the
// caller's receive loop.
func keepAlive(ctx context.Context, psc redis.PubSubConn, raw io.Closer, every time.Duration) (stop func()) {
	var pinger sync.WaitGroup
	done := make(chan struct{})
	pinger.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				_ = raw.Close() // ends the receive
				return
			case <-t.C:
				if err := psc.Ping(""); err != nil {
					_ = raw.Close()
					return
				}
			}
		}
	})
	return func() { close(done); pinger.Wait() }
}
