package session

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The forward-auth hot path (cookie, session, identity, rules, headers)
// runs on every request a proxy checks. Two caches keep it off gob and off
// the network; docs/sessions.md#the-session-cache states their guarantees.
//
//   - decodeCache, in sessionCodec: encoded session → decoded session, for
//     every store. It is keyed by the encoded bytes themselves, so it is
//     never stale: a changed session has other bytes.
//   - the token cache (package store), in front of the Redis store's reads: token → encoded
//     session, for at most session.cache_ttl (and never past the key's own
//     expiry), and only while the subscription to the store's invalidation
//     channel is up. Every write and deletion of a session, on any replica,
//     publishes the SHA-256 of its token there (never the token), and every
//     replica drops that entry; the replica that wrote drops its own at
//     once. While the subscription is down the cache is empty and unused.
//
// Values read from a session are shared with the cache and with every other
// request that loaded the same bytes: code that changes one must Put a new
// value, never modify it in place.

// decodeCache maps encoded sessions to their decoded form. The maps it
// holds are never modified; get returns a copy, which scs may change.
//
// Its budget (max) is of heap bytes, everything an entry keeps counted:
// the key, the decoded values, the view and what derive made (heapBytes),
// the map's slot. Entries leave when the budget needs room (picked at
// random: map order), and at a sweep (at most once per decodeSweep, on a
// put) when their session's deadline has passed or nobody read them since
// the sweep before: so memory follows the sessions in use, not the most the
// budget allows.
type decodeCache struct {
	max int // heap bytes
	now func() time.Time

	mu    sync.RWMutex
	m     map[string]*decodeEntry
	size  int
	peak  int // most entries m held since it was made (its table does not shrink)
	swept time.Time
}

type decodeEntry struct {
	d    *decodedSession
	cost int         // heap bytes, as counted against max
	used atomic.Bool // read since the last sweep
}

// decodeSweep: how often at most expired and unread entries are dropped.
const decodeSweep = time.Minute

// decodeEntryOverhead is what every entry costs besides its key and
// decoding: the entry, the decodedSession, and its slots in the map (key,
// pointer, control byte).
var decodeEntryOverhead = allocSize(int(unsafe.Sizeof(decodeEntry{}))) +
	allocSize(int(unsafe.Sizeof(decodedSession{}))) + store.MapSlots*(int(unsafe.Sizeof(""))+8+1)

// decodedSession is one decoded session, shared by every request that
// read the same bytes: nothing in it is ever modified.
type decodedSession struct {
	deadline time.Time
	values   map[string]any
	// view is what forward-auth reads of the session (sessions.peek),
	// made with the decoding; nil when the session has no identity.
	view *View
}

// View is the part of a signed-in session that forward-auth reads:
// the identity, its tokens (to tell whether they are due for refresh), and
// what the codec's derive function made of the identity (for the broker:
// its relay headers), once per decoding rather than once per request. The
// session code does not know what derived is; like the rest of the view it
// is shared, and only read.
type View struct {
	id      providers.Identity
	tokens  Tokens
	derived any
}

// ID is the session's identity.
func (v *View) ID() providers.Identity { return v.id }

// Tokens are the login's tokens (zero when the session has none).
func (v *View) Tokens() Tokens { return v.tokens }

// Derived is what the derive function given to New made of the identity.
func (v *View) Derived() any { return v.derived }

func newDecodedSession(deadline time.Time, values map[string]any, derive func(providers.Identity) any) *decodedSession {
	d := &decodedSession{deadline: deadline, values: values}
	if id, ok := values[keyIdentity].(providers.Identity); ok && id.Subject != "" {
		t, _ := values[keyTokens].(Tokens)
		d.view = &View{id: id, tokens: t}
		if derive != nil {
			d.view.derived = derive(id)
		}
	}
	return d
}

func newDecodeCache(maxBytes int) *decodeCache {
	return &decodeCache{max: maxBytes, now: time.Now, m: map[string]*decodeEntry{}, swept: time.Now()}
}

// shared returns the decoding of b when it is cached. It is the cache's
// own and must only be read (Decode copies the values for scs).
func (c *decodeCache) shared(b []byte) (*decodedSession, bool) {
	c.mu.RLock()
	e, ok := c.m[string(b)]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !e.used.Load() { // a write only once per sweep: no shared cache line written per read
		e.used.Store(true)
	}
	return e.d, true
}

// cost is what caching d under a key of n bytes takes of the budget.
func (d *decodedSession) cost(n int) int {
	return allocSize(n) + decodeEntryOverhead + heapBytes(d.values, d.view)
}

// put remembers d, the decoding of b; d must not change afterwards. When
// the cache is full, entries picked at random (map order) make room.
func (c *decodeCache) put(b []byte, d *decodedSession) {
	if len(b) > store.MaxCachedSession {
		return
	}
	cost := d.cost(len(b))
	if cost > c.max {
		return
	}
	key := string(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; ok {
		return
	}
	c.sweepLocked()
	for k, e := range c.m {
		if c.size+cost <= c.max {
			break
		}
		delete(c.m, k)
		c.size -= e.cost
	}
	e := &decodeEntry{d: d, cost: cost}
	e.used.Store(true)
	c.m[key] = e
	c.size += cost
	c.peak = max(c.peak, len(c.m))
}

// sweepLocked drops, at most once per decodeSweep, the entries whose
// session has ended or that nobody read since the last sweep; and makes
// the map anew when it holds less than half its peak, since a map's table
// never shrinks.
func (c *decodeCache) sweepLocked() {
	now := c.now()
	if now.Sub(c.swept) < decodeSweep {
		return
	}
	c.swept = now
	for k, e := range c.m {
		if !e.used.Load() || !now.Before(e.d.deadline) {
			delete(c.m, k)
			c.size -= e.cost
			continue
		}
		e.used.Store(false)
	}
	if len(c.m) < c.peak/2 {
		m := make(map[string]*decodeEntry, len(c.m))
		maps.Copy(m, c.m)
		c.m, c.peak = m, len(m)
	}
}

// copyValues is a shallow copy of a session's values, never nil (scs puts
// into it).
func copyValues(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	return maps.Clone(v)
}

// sessionCodec is scs's gob codec, with decoding failures told apart from
// store failures: a session that cannot be decoded (written by a version
// that stored other types) is no session, not an outage. Decoded sessions
// are cached by their encoding (decodeCache).
type sessionCodec struct {
	scs.GobCodec
	cache  *decodeCache
	derive func(providers.Identity) any // View.derived; may be nil
}

type undecodableError struct{ err error }

func (e *undecodableError) Error() string { return "broker: undecodable session: " + e.err.Error() }
func (e *undecodableError) Unwrap() error { return e.err }

// decodeShared is Decode for a reader that never changes the values: they
// may be the cache's own.
func (c *sessionCodec) decodeShared(b []byte) (*decodedSession, error) {
	if d, ok := c.cache.shared(b); ok {
		return d, nil
	}
	deadline, values, err := c.GobCodec.Decode(b)
	if err != nil {
		return nil, &undecodableError{err}
	}
	unpackLogin(values) // compact.go
	d := newDecodedSession(deadline, values, c.derive)
	c.cache.put(b, d)
	return d, nil
}

// Encode is scs's gob encoding with the login's tokens packed (compact.go),
// written without the type names gob's own encoder adds (gobwire.go).
func (c *sessionCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	values = packLogin(values)
	if b, ok := encodeCompact(deadline, values); ok {
		return b, nil
	}
	return c.GobCodec.Encode(deadline, values)
}

func (c *sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	d, err := c.decodeShared(b)
	if err != nil {
		return time.Time{}, nil, err
	}
	return d.deadline, copyValues(d.values), nil // scs changes its session's map
}
