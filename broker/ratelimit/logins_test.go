package ratelimit

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLogins(func() time.Time { return now })
	begin := func(user, addr string) time.Duration {
		t.Helper()
		_, w := l.Begin(user, addr)
		return w
	}
	for i := range PairFailures {
		if w := begin("u", "a"); w != 0 {
			t.Fatalf("attempt %d limited for %v", i+1, w)
		}
	}
	interval := FailureSpan / PairFailures
	if w := begin("u", "a"); w != interval {
		t.Fatalf("wait %v, want %v", w, interval)
	}
	// The user at another address is not limited.
	if w := begin("u", "b"); w != 0 {
		t.Fatalf("the user at another address waits %v", w)
	}
	now = now.Add(interval - time.Second)
	if w := begin("u", "a"); w != time.Second {
		t.Fatalf("wait %v, want 1s", w)
	}
	now = now.Add(time.Second)
	a, w := l.Begin("u", "a")
	if w != 0 {
		t.Fatalf("after the interval: wait %v", w)
	}
	// A success clears the user at that address and refunds the address's
	// attempt.
	l.Succeeded(a)
	if _, ok := l.pairs.tat[a.pair]; ok {
		t.Error("user at the address not reset")
	}
	before := l.addrs.tat["a"]
	v, _ := l.Begin("v", "a")
	l.Refund(v)
	if l.addrs.tat["a"] != before {
		t.Error("refund did not undo begin")
	}
	if _, ok := l.spread.tat["v"]; ok {
		t.Error("refund did not undo the spread's count")
	}
	// Once every bucket has refilled, the entries can go.
	now = now.Add(FailureSpan)
	if w := begin("u", "a"); w != 0 {
		t.Errorf("after the span: %v", w)
	}
}

// TestLoginLimiterSpread: failures from many addresses slow a user down
// everywhere, by SlowDelay for an address's first attempt, and no more;
// the slow-down ends about a span after the attack.
func TestLoginLimiterSpread(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLogins(func() time.Time { return now })
	addr := func(i int) string { return "192.0.2." + strconv.Itoa(i) }
	for i := range SpreadAddrs - 1 {
		if _, w := l.Begin("u", addr(i)); w != 0 {
			t.Fatalf("address %d: %v", i, w)
		}
	}
	if _, w := l.Begin("u", "fresh-1"); w != 0 {
		t.Fatalf("below the spread: %v", w)
	}
	// One address more than SpreadAddrs-1 has now failed: slowed down.
	a, w := l.Begin("u", "fresh-2")
	if w != SlowDelay || a.Limit != "user failing from many addresses" {
		t.Fatalf("slowed: %v %q", w, a.Limit)
	}
	if _, w := l.Begin("u", "fresh-2"); w != SlowDelay {
		t.Fatalf("asking again does not push the wait: %v", w)
	}
	// Addresses that failed already keep their own buckets.
	if _, w := l.Begin("u", addr(0)); w != 0 {
		t.Fatalf("an address that failed once: %v", w)
	}
	// Another user is not slowed down.
	if _, w := l.Begin("other", "fresh-2"); w != 0 {
		t.Fatalf("another user: %v", w)
	}
	now = now.Add(SlowDelay)
	a, w = l.Begin("u", "fresh-2")
	if w != 0 {
		t.Fatalf("after SlowDelay: %v", w)
	}
	l.Succeeded(a)
	// A long attack keeps the user slowed, up to the ceiling, which then
	// drains in about a span.
	for i := range 10 * SpreadAddrs {
		l.Begin("u", "bot-"+strconv.Itoa(i))
	}
	now = now.Add(FailureSpan)
	if l.spread.wait("u", now) == 0 {
		t.Fatal("a span after a long attack: not slowed down any more")
	}
	now = now.Add(2 * FailureSpan / SpreadAddrs)
	if _, w := l.Begin("u", "fresh-4"); w != 0 {
		t.Fatalf("a span and an interval after the attack: %v", w)
	}
}

func TestLoginLimiterIsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := bucketTable{burst: 5, span: 15 * time.Minute, max: 100}
	// The hardest-limited key survives a flood of new keys.
	for range 5 {
		b.add("victim", now)
	}
	for i := range 1000 {
		b.add("k"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if len(b.tat) > b.max {
		t.Errorf("%d entries, cap %d", len(b.tat), b.max)
	}
	if b.wait("victim", now) == 0 {
		t.Error("the most limited key was evicted")
	}
}

// TestLoginLimiterFlood: anonymous attempts with random usernames from
// random addresses, some at one user from many addresses, never grow the
// limiter's tables past their cap (made small here: eviction scans a
// table).
func TestLoginLimiterFlood(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLogins(func() time.Time { return now })
	const limit, n = 500, 20_000
	l.pairs.max, l.addrs.max, l.spread.max = limit, limit, limit
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		var a4 [4]byte
		for j := range a4 {
			a4[j] = byte(rng.UintN(256))
		}
		user := "user-" + strconv.FormatUint(rng.Uint64(), 36)
		if i%10 == 0 {
			user = "victim"
		}
		a, w := l.Begin(UserKey("local", user), AddrKey(netip.AddrFrom4(a4).String()))
		if w == 0 && i%3 == 0 {
			l.Refund(a)
		}
		if i%100 == 0 {
			now = now.Add(time.Second)
		}
	}
	for name, tab := range map[string]map[string]time.Time{"pairs": l.pairs.tat, "addrs": l.addrs.tat, "spread": l.spread.tat} {
		if len(tab) > limit {
			t.Errorf("%s: %d entries after %d anonymous attempts, cap %d", name, len(tab), n, limit)
		}
	}
	if len(l.pairs.tat) < limit/2 {
		t.Errorf("pairs: %d entries: the flood did not reach the cap, so it proves little", len(l.pairs.tat))
	}
}

func TestAddrKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.7":        "192.0.2.7",
		"::ffff:192.0.2.7": "192.0.2.7",
		"2001:db8::1":      "2001:db8::/64",
		"2001:db8::ffff:1": "2001:db8::/64",
		"2001:db8:0:1::1":  "2001:db8:0:1::/64",
		"fe80::1%eth0":     "fe80::/64",
		"unix:/run/x.sock": "unix:/run/x.sock",
		"":                 "",
	}
	for in, want := range cases {
		if got := AddrKey(in); got != want {
			t.Errorf("AddrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
