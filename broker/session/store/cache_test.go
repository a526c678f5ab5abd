package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

func upCache(ttl time.Duration, clock *fakeClock) *tokenCache {
	c := newTokenCache(ttl, 1<<20, clock.now)
	c.setUp(true)
	return c
}

// TestTokenCacheTTL: an entry lives for the time to live, or the key's
// remaining life when that is shorter, and not a moment longer.
func TestTokenCacheTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := upCache(5*time.Second, clock)
	c.fill(c.reserve("long"), []byte("s1"), time.Hour)
	c.fill(c.reserve("short"), []byte("s2"), 2*time.Second)
	c.fill(c.reserve("gone"), []byte("s3"), 0) // PTTL: the key expired meanwhile
	if b, ok := c.find("long"); !ok || string(b) != "s1" {
		t.Fatalf("fresh entry: %q %v", b, ok)
	}
	if _, ok := c.find("gone"); ok {
		t.Error("a session whose key had no life left was cached")
	}
	clock.add(2*time.Second - time.Nanosecond)
	if _, ok := c.find("short"); !ok {
		t.Error("entry gone before the key's expiry")
	}
	clock.add(time.Nanosecond)
	if _, ok := c.find("short"); ok {
		t.Error("entry outlived its key")
	}
	clock.add(3*time.Second - time.Nanosecond)
	if _, ok := c.find("long"); !ok {
		t.Error("entry gone before the time to live")
	}
	clock.add(time.Nanosecond)
	if _, ok := c.find("long"); ok {
		t.Error("entry outlived the time to live")
	}
}

// TestTokenCacheDown: while the subscription is down the cache is empty
// and takes nothing; a read that started before it went down stores
// nothing after it came back (invalidations were lost in between).
func TestTokenCacheDown(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := upCache(time.Minute, clock)
	c.fill(c.reserve("tok"), []byte("s"), time.Hour)
	before := c.reserve("other")
	c.setUp(false)
	if _, ok := c.find("tok"); ok {
		t.Error("entry kept while the subscription is down")
	}
	r := c.reserve("tok")
	if r.ok {
		t.Error("reservation while down")
	}
	c.fill(r, []byte("s"), time.Hour)
	if _, ok := c.find("tok"); ok {
		t.Error("filled while down")
	}
	c.setUp(true)
	if _, ok := c.find("tok"); ok {
		t.Error("entry from before the outage is back")
	}
	c.fill(before, []byte("stale"), time.Hour)
	if _, ok := c.find("other"); ok {
		t.Error("a read from before the outage was stored after it")
	}
	c.fill(c.reserve("other"), []byte("fresh"), time.Hour)
	if b, ok := c.find("other"); !ok || string(b) != "fresh" {
		t.Errorf("after the outage: %q %v", b, ok)
	}
}

// TestTokenCacheInvalidate: an invalidation drops the entry of its token's
// hash, and a read in flight for that token (or any of its stripe) stores
// nothing; other tokens' reads are not affected.
func TestTokenCacheInvalidate(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := upCache(time.Minute, clock)
	c.fill(c.reserve("tok"), []byte("s"), time.Hour)
	c.invalidate(HashOf("tok"))
	if _, ok := c.find("tok"); ok {
		t.Fatal("invalidated entry still found")
	}
	inflight := c.reserve("tok")
	var other string // a token of another stripe
	for i := 0; other == ""; i++ {
		if tok := fmt.Sprint("other-", i); HashOf(tok)[0]%cacheStripes != HashOf("tok")[0]%cacheStripes {
			other = tok
		}
	}
	unrelated := c.reserve(other)
	c.invalidate(HashOf("tok"))
	c.fill(inflight, []byte("old"), time.Hour)
	if _, ok := c.find("tok"); ok {
		t.Error("a read that raced with an invalidation was stored")
	}
	c.fill(unrelated, []byte("o"), time.Hour)
	if _, ok := c.find(other); !ok {
		t.Error("an unrelated invalidation spoilt a read")
	}
	if len(c.entries) != len(c.byHash) {
		t.Errorf("%d entries, %d hashes", len(c.entries), len(c.byHash))
	}
}

// TestTokenCacheBound: the cache holds at most its size in bytes.
func TestTokenCacheBound(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	max := 10 * entryCost("tok-10", make([]byte, 100))
	c := newTokenCache(time.Minute, max, clock.now)
	c.setUp(true)
	for i := range 100 {
		c.fill(c.reserve(fmt.Sprint("tok-", i)), make([]byte, 100), time.Hour)
		if c.size > max || len(c.entries) > 10 {
			t.Fatalf("after %d: %d bytes in %d entries", i+1, c.size, len(c.entries))
		}
	}
	if len(c.entries) != 10 || len(c.byHash) != 10 {
		t.Errorf("%d entries, %d hashes; want 10 (full)", len(c.entries), len(c.byHash))
	}
	c.fill(c.reserve("big"), make([]byte, max), time.Hour)
	if _, ok := c.find("big"); ok {
		t.Error("an entry larger than the cache was stored")
	}
}

// TestInvalidationMessages: a message is the token's hash in hex; one that
// is not empties the cache.
func TestInvalidationMessages(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := upCache(time.Minute, clock)
	v := newInvalidations(c, "ch", time.Second, nil, nil)
	for _, tok := range []string{"a", "b"} {
		c.fill(c.reserve(tok), []byte(tok), time.Hour)
	}
	if m := HashOf("a").String(); len(m) != 32 || m == "a" {
		t.Fatalf("message %q", m)
	}
	v.deliver([]byte(HashOf("a").String()))
	if _, ok := c.find("a"); ok {
		t.Error("a: not invalidated")
	}
	if _, ok := c.find("b"); !ok {
		t.Error("b: invalidated by a's message")
	}
	for _, bad := range []string{"", "zz", HashOf("a").String() + "00", "g" + HashOf("b").String()[1:]} {
		c.fill(c.reserve("b"), []byte("b"), time.Hour)
		v.deliver([]byte(bad))
		if _, ok := c.find("b"); ok {
			t.Errorf("message %q: the cache was not emptied", bad)
		}
		if !c.isUp() {
			t.Errorf("message %q: the cache went down", bad)
		}
	}
}

// TestRedisStoreFindCached: a read through the cache answers as a read of
// Redis does (a missing session is not found, without error), then from
// the cache (FindCtx, and FindCached without a context); a write drops the
// entry, and only the marked read of that token uses the cache.
func TestRedisStoreFindCached(t *testing.T) {
	r := redisserver.Start(t)
	s, err := NewRedis(RedisConfig{Address: r.Addr, KeyPrefix: "t:"}, time.Minute, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	bg := context.Background()
	find := func(ctx context.Context, token string) (string, bool) {
		t.Helper()
		b, found, err := s.FindCtx(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), found
	}
	s.feed.start()
	waitFor(t, 5*time.Second, "subscribed", s.cache.isUp)
	if b, found := find(WithCachedRead(bg, "nobody"), "nobody"); found || b != "" {
		t.Errorf("missing session: %q %v", b, found)
	}
	if err := s.CommitCtx(bg, "tok", []byte("v1"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	settle(t, r, s) // the write's own invalidation would drop what the next read caches
	if b, found, ok := s.FindCached("tok"); ok {
		t.Errorf("FindCached before a read: %q %v, answered", b, found)
	}
	cached := WithCachedRead(bg, "tok")
	if b, found := find(cached, "tok"); !found || b != "v1" {
		t.Fatalf("first read: %q %v", b, found)
	}
	if b, found, ok := s.FindCached("tok"); !ok || !found || string(b) != "v1" {
		t.Errorf("FindCached after the read: %q %v %v; want v1 from the cache", b, found, ok)
	}
	r.Do("SET", "t:session:tok", "behind the store's back") // publishes nothing
	if b, _ := find(cached, "tok"); b != "v1" {
		t.Errorf("second read %q: not from the cache", b)
	}
	if b, _ := find(bg, "tok"); b != "behind the store's back" {
		t.Errorf("an unmarked read %q: from the cache", b)
	}
	if b, _ := find(WithCachedRead(bg, "other"), "tok"); b != "behind the store's back" {
		t.Errorf("a read marked for another token %q: from the cache", b)
	}
	if err := s.CommitCtx(bg, "tok", []byte("v2"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// At once, without waiting for the invalidation to come back.
	if b, found, ok := s.FindCached("tok"); ok && (!found || string(b) != "v2") {
		t.Errorf("FindCached after a write: %q %v", b, found)
	}
	if b, _ := find(cached, "tok"); b != "v2" {
		t.Errorf("after a write: %q", b)
	}
	if err := s.DeleteCtx(bg, "tok"); err != nil {
		t.Fatal(err)
	}
	if b, found := find(cached, "tok"); found {
		t.Errorf("after a delete: %q", b)
	}
	if b, found, _ := s.FindCached("tok"); found {
		t.Errorf("FindCached after a delete: %q", b)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// settle waits until the invalidations published so far on "t:invalidate"
// have reached s's cache, which then is empty: a message that is no
// token's hash empties it, and Redis delivers in order.
func settle(t *testing.T, r *redisserver.Server, s *Redis) {
	t.Helper()
	before := s.Flushes()
	r.Do("PUBLISH", "t:invalidate", "settle")
	waitFor(t, 2*time.Second, "the invalidations delivered", func() bool { return s.Flushes() > before })
}

// waitFor polls cond every 10 ms until it holds, for at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTokenCacheSweep: expired entries leave at the next fill a time to
// live later, not only when the cache is full; the token kept is a copy of
// the request's (which may be part of its whole Cookie header).
func TestTokenCacheSweep(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newTokenCache(5*time.Second, CacheBytes, clock.now)
	c.setUp(true)
	header := "a=b; session=tok-0; c=d"
	c.fill(c.reserve(header[12:17]), []byte("s0"), time.Hour)
	for k := range c.entries {
		if unsafe.StringData(k) == unsafe.StringData(header[12:17]) {
			t.Error("the cache keeps the request's token, and the header around it")
		}
	}
	for i := 1; i < 50; i++ {
		c.fill(c.reserve(fmt.Sprint("tok-", i)), []byte("s"), time.Hour)
	}
	clock.t = clock.t.Add(5 * time.Second)
	c.fill(c.reserve("fresh"), []byte("s"), time.Hour)
	if len(c.entries) != 1 || len(c.byHash) != 1 {
		t.Errorf("%d entries, %d hashes after the sweep; want the fresh one", len(c.entries), len(c.byHash))
	}
	if c.size != entryCost("fresh", []byte("s")) {
		t.Errorf("size %d after the sweep", c.size)
	}
}

// TestTokenCacheBudget: filled past its budget with 1 KB sessions, the heap
// the cache holds, measured, stays within the budget and is most of it.
func TestTokenCacheBudget(t *testing.T) {
	const budget = 1 << 20
	clock := &fakeClock{t: time.Unix(1000, 0)}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	c := newTokenCache(time.Minute, budget, clock.now)
	c.setUp(true)
	before := heap()
	for i := range 5_000 {
		// As redigo returns a reply: an array of its own.
		b := bytes.Repeat([]byte{byte(i)}, 1012)
		cookie := "session=" + randomToken() + "; other=" + strings.Repeat("x", 200)
		c.fill(c.reserve(cookie[8:51]), b, time.Hour)
	}
	held := int64(heap()) - int64(before)
	t.Logf("%d sessions cached, %d bytes accounted, %d bytes of heap measured", len(c.entries), c.size, held)
	// noise: what the runtime and other goroutines (earlier tests'
	// subscriptions winding down) allocate meanwhile.
	const noise = 32 << 10
	if held > budget+noise {
		t.Errorf("the cache holds %d bytes of heap, over its budget %d", held, budget)
	}
	if held < budget/2 {
		t.Errorf("the cache holds %d bytes of heap, under half its budget %d: the accounting is too generous", held, budget)
	}
	runtime.KeepAlive(c)
}
