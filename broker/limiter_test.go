package broker

import (
	"strconv"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLoginLimiter(func() time.Time { return now })
	for i := range userFailures {
		if w := l.begin("u", "a"); w != 0 {
			t.Fatalf("attempt %d limited for %v", i+1, w)
		}
	}
	interval := failureSpan / userFailures
	if w := l.begin("u", "a"); w != interval {
		t.Fatalf("wait %v, want %v", w, interval)
	}
	now = now.Add(interval - time.Second)
	if w := l.begin("u", "a"); w != time.Second {
		t.Fatalf("wait %v, want 1s", w)
	}
	now = now.Add(time.Second)
	if w := l.begin("u", "a"); w != 0 {
		t.Fatalf("after the interval: wait %v", w)
	}
	// A success clears the user and refunds the address's attempt.
	l.succeeded("u", "a")
	if _, ok := l.users.tat["u"]; ok {
		t.Error("user not reset")
	}
	before := l.addrs.tat["a"]
	l.begin("v", "a")
	l.refund("v", "a")
	if l.addrs.tat["a"] != before {
		t.Error("refund did not undo begin")
	}
	// Once every bucket has refilled, the entries can go.
	now = now.Add(failureSpan)
	if w := l.begin("u", "a"); w != 0 {
		t.Errorf("after the span: %v", w)
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
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
