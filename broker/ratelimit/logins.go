// Package ratelimit bounds what clients can try: password attempts of
// local accounts (Logins) and refused requests of an endpoint (Failures),
// with token buckets in memory, per replica, of bounded size.
package ratelimit

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limits on password attempts (local providers: the login form and HTTP
// Basic alike). They are per replica: each keeps its counters in memory.
// docs/local-users.md#rate-limits explains the numbers.
const (
	PairFailures = 5                // failed attempts per username and client address...
	AddrFailures = 20               // ...and per client address (an IPv6 /64)...
	FailureSpan  = 15 * time.Minute // ...within this span, refilled evenly
	// SpreadAddrs addresses failing at one username within FailureSpan
	// slow that username down everywhere: an address's first attempt at it
	// then waits SlowDelay. Counted up to twice as many, so that the
	// slow-down outlasts a burst by about FailureSpan, no longer.
	SpreadAddrs = 10
	SlowDelay   = time.Minute
	maxLimited  = 10_000 // entries per table; the least limited go first
	maxLimitKey = 256    // bytes of a username kept in a key
)

// Logins rate-limits password attempts with token buckets (GCRA: one
// timestamp per key). The hard limits are per username at one client
// address and per client address, so that nobody can lock a user out from
// an address of their own. Across addresses a username is only slowed
// down: once failures come from many addresses (spread), an address that
// has not tried that username yet waits SlowDelay before its first
// attempt, which a legitimate user from a fresh address also waits, no
// more. An attempt is counted before the password is checked, so
// concurrent guesses cannot overrun a limit, and refunded when it succeeds.
//
// It is safe for concurrent use.
type Logins struct {
	mu     sync.Mutex
	now    func() time.Time
	pairs  bucketTable // user and address
	addrs  bucketTable // address
	spread bucketTable // user: one charge per address that failed at it
}

func NewLogins(now func() time.Time) *Logins {
	return &Logins{now: now,
		pairs:  bucketTable{burst: PairFailures, span: FailureSpan, max: maxLimited},
		addrs:  bucketTable{burst: AddrFailures, span: FailureSpan, max: maxLimited},
		spread: bucketTable{burst: SpreadAddrs, span: FailureSpan, max: maxLimited, ceiling: 2 * FailureSpan}}
}

// Attempt is one password attempt as Begin counted it, for Succeeded and
// Refund.
type Attempt struct {
	user, addr, pair string
	spread           bool   // it counted its address towards the user's spread
	Limit            string // when refused: the limit that refused it (for logs)
}

// Begin counts an attempt by user (already keyed by provider) from addr. It
// returns 0 when the attempt may go ahead, else how long to wait; a refused
// attempt is not counted (except the address's first one at a slowed-down
// user, which books its wait).
func (l *Logins) Begin(user, addr string) (Attempt, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := Attempt{user: user, addr: addr, pair: user + "\x00" + addr}
	now := l.now()
	addrWait, pairWait := l.addrs.wait(addr, now), l.pairs.wait(a.pair, now)
	switch {
	case addrWait > 0 && addrWait >= pairWait:
		a.Limit = "address"
		return a, addrWait
	case pairWait > 0:
		a.Limit = "user at address"
		return a, pairWait
	}
	fresh := l.pairs.full(a.pair, now)
	if fresh && l.spread.wait(user, now) > 0 {
		// The address waits SlowDelay, then has one attempt, then one per
		// interval. The booking counts as an attempt of the address (no
		// address books for many users) and towards the spread (an attack
		// from ever new addresses keeps the slow-down on).
		l.pairs.hold(a.pair, now, SlowDelay)
		l.addrs.add(addr, now)
		l.spread.add(user, now)
		a.Limit = "user failing from many addresses"
		return a, SlowDelay
	}
	l.pairs.add(a.pair, now)
	l.addrs.add(addr, now)
	if fresh {
		l.spread.add(user, now)
		a.spread = true
	}
	return a, 0
}

// Succeeded undoes Begin's count after a correct password: the user starts
// afresh at this address, the address gets its attempt back. The user's
// spread keeps the other addresses' failures: a sign-in does not lift the
// slow-down that someone else's guessing caused.
func (l *Logins) Succeeded(a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	delete(l.pairs.tat, a.pair)
	l.addrs.refund(a.addr, now)
	if a.spread {
		l.spread.refund(a.user, now)
	}
}

// Refund undoes Begin's count for an attempt that failed through no fault
// of the user's (the provider was unavailable).
func (l *Logins) Refund(a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.pairs.refund(a.pair, now)
	l.addrs.refund(a.addr, now)
	if a.spread {
		l.spread.refund(a.user, now)
	}
}

// bucketTable is one token bucket per key: burst attempts at once, then one
// per span/burst. tat is GCRA's "theoretical arrival time": the key is
// exhausted while tat lies more than span-interval in the future, and an
// entry whose tat has passed is a full bucket, so it can go.
type bucketTable struct {
	burst int
	span  time.Duration
	max   int
	// ceiling, when set, lets add count past the limit, up to this far
	// ahead: the spread, which counts failures that other limits let
	// through. Otherwise add follows a wait of 0, and tat stays within
	// span of now.
	ceiling time.Duration
	tat     map[string]time.Time
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
	tat = tat.Add(b.interval())
	if b.ceiling > 0 && tat.Sub(now) > b.ceiling {
		tat = now.Add(b.ceiling)
	}
	b.tat[key] = tat
}

// full reports whether key's bucket is full: no attempt of it is counted.
func (b *bucketTable) full(key string, now time.Time) bool {
	tat, ok := b.tat[key]
	return !ok || !tat.After(now)
}

// hold empties key's bucket so that its next attempt waits d, no longer
// than an interval (so tat stays within span of now).
func (b *bucketTable) hold(key string, now time.Time, d time.Duration) {
	if _, ok := b.tat[key]; !ok {
		b.add(key, now) // makes room as add does
	}
	b.tat[key] = now.Add(b.span - b.interval() + d)
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

// UserKey is the limiter's key for a username at a provider.
func UserKey(provider, username string) string {
	// Directories match usernames ignoring case and surrounding or
	// repeated spaces (LDAP's caseIgnoreMatch, Active Directory): the
	// limits count the account, not one spelling of it.
	username = strings.Join(strings.Fields(strings.ToLower(username)), " ")
	if len(username) > maxLimitKey {
		username = username[:maxLimitKey]
	}
	return provider + "\x00" + username
}

// AddrKey is the limiter's key for a client address: an IPv6 client is
// counted by its /64, which one subscriber usually holds whole.
func AddrKey(client string) string {
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

// Failures counts failed requests per key (an endpoint's refusals of one
// client), so that a client that keeps failing waits. It is safe for
// concurrent use.
type Failures struct {
	mu    sync.Mutex
	now   func() time.Time
	table bucketTable
}

// NewFailures allows burst failures per key, then one per span/burst.
func NewFailures(burst int, span time.Duration, now func() time.Time) *Failures {
	return &Failures{now: now, table: bucketTable{burst: burst, span: span, max: maxLimited}}
}

// Wait is how long key must wait before its next attempt (0: go ahead).
func (l *Failures) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.table.wait(key, l.now())
}

// Failed counts a failure of key.
func (l *Failures) Failed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.table.add(key, l.now())
}
