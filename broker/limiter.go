package broker

import (
	"net/netip"
	"sync"
	"time"
)

// Limits on password attempts (local providers: the login form and HTTP
// Basic alike). They are per replica: each keeps its counters in memory.
const (
	userFailures = 5                // failed attempts per username and provider...
	addrFailures = 20               // ...and per client address (an IPv6 /64)...
	failureSpan  = 15 * time.Minute // ...within this span, refilled evenly
	maxLimited   = 10_000           // entries per table; the least limited go first
	maxLimitKey  = 256              // bytes of a username kept in a key
)

// loginLimiter rate-limits password attempts per user and per client
// address, with a token bucket each (GCRA: one timestamp per key). An
// attempt is counted before the password is checked, so concurrent guesses
// cannot overrun the limit, and refunded when it succeeds.
//
// It is safe for concurrent use.
type loginLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	users bucketTable
	addrs bucketTable
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now,
		users: bucketTable{burst: userFailures, span: failureSpan, max: maxLimited},
		addrs: bucketTable{burst: addrFailures, span: failureSpan, max: maxLimited}}
}

// begin counts an attempt by user (already keyed by provider) from addr. It
// returns 0 when the attempt may go ahead, else how long to wait; a refused
// attempt is not counted.
func (l *loginLimiter) begin(user, addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if wait := max(l.users.wait(user, now), l.addrs.wait(addr, now)); wait > 0 {
		return wait
	}
	l.users.add(user, now)
	l.addrs.add(addr, now)
	return 0
}

// succeeded undoes begin's count after a correct password: the user starts
// afresh, the address gets its attempt back.
func (l *loginLimiter) succeeded(user, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.users.tat, user)
	l.addrs.refund(addr, l.now())
}

// refund undoes begin's count for an attempt that failed through no fault
// of the user's (the provider was unavailable).
func (l *loginLimiter) refund(user, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.users.refund(user, now)
	l.addrs.refund(addr, now)
}

// bucketTable is one token bucket per key: burst attempts at once, then one
// per span/burst. tat is GCRA's "theoretical arrival time": the key is
// exhausted while tat lies more than span-interval in the future, and an
// entry whose tat has passed is a full bucket, so it can go.
type bucketTable struct {
	burst int
	span  time.Duration
	max   int
	tat   map[string]time.Time
}

func (b *bucketTable) interval() time.Duration { return b.span / time.Duration(b.burst) }

func (b *bucketTable) wait(key string, now time.Time) time.Duration {
	tat, ok := b.tat[key]
	if !ok {
		return 0
	}
	return max(0, tat.Sub(now)-(b.span-b.interval()))
}

func (b *bucketTable) add(key string, now time.Time) {
	if b.tat == nil {
		b.tat = make(map[string]time.Time)
	}
	tat, ok := b.tat[key]
	if !ok && len(b.tat) >= b.max {
		b.evict(now)
	}
	if tat.Before(now) {
		tat = now
	}
	b.tat[key] = tat.Add(b.interval())
}

func (b *bucketTable) refund(key string, now time.Time) {
	tat, ok := b.tat[key]
	if !ok {
		return
	}
	if tat = tat.Add(-b.interval()); !tat.After(now) {
		delete(b.tat, key)
		return
	}
	b.tat[key] = tat
}

// evict makes room: first the full buckets, then, if none, the least
// limited key. Filling the table therefore frees the keys closest to being
// forgotten anyway, never the ones being limited hardest.
func (b *bucketTable) evict(now time.Time) {
	var least string
	var leastTAT time.Time
	for k, tat := range b.tat {
		if !tat.After(now) {
			delete(b.tat, k)
			continue
		}
		if least == "" || tat.Before(leastTAT) {
			least, leastTAT = k, tat
		}
	}
	if len(b.tat) >= b.max {
		delete(b.tat, least)
	}
}

// userKey is the limiter's key for a username at a provider.
func userKey(provider, username string) string {
	if len(username) > maxLimitKey {
		username = username[:maxLimitKey]
	}
	return provider + "\x00" + username
}

// addrKey is the limiter's key for a client address: an IPv6 client is
// counted by its /64, which one subscriber usually holds whole.
func addrKey(client string) string {
	a, err := netip.ParseAddr(client)
	if err != nil {
		return client
	}
	if a = a.Unmap().WithZone(""); a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
