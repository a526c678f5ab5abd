package store

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// TestConformance runs one suite, the Backend contract, against every
// implementation: memory, and Redis on a real redis-server (redisserver
// fails the test when it is not installed; ./scripts/test installs it).
func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		runConformance(t, func(t *testing.T, now func() time.Time) Backend { return NewMemoryBackend(now) })
	})
	t.Run("redis", func(t *testing.T) {
		r := redisserver.Start(t)
		runConformance(t, func(t *testing.T, now func() time.Time) Backend { return testRedisStore(t, r, now) })
	})
}

// runConformance checks the contract of Backend. The clock is the real
// one plus an offset the suite moves: the index's deadlines are read from
// it, while single-use marks and locks expire in real time (Redis keeps
// their TTLs), so the suite sleeps for those.
func runConformance(t *testing.T, open func(t *testing.T, now func() time.Time) Backend) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	b := open(t, now)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("index", func(t *testing.T) {
		must(b.IndexAdd(ctx, []string{"sub:p:1", "sid:p:s"}, "tokA", now().Add(time.Hour)))
		must(b.IndexAdd(ctx, []string{"sub:p:1"}, "tokB", now().Add(time.Minute)))
		got, err := b.IndexTokens(ctx, "sub:p:1")
		must(err)
		slices.Sort(got)
		if !slices.Equal(got, []string{"tokA", "tokB"}) {
			t.Errorf("tokens %v", got)
		}
		if got, _ := b.IndexTokens(ctx, "sid:p:s"); !slices.Equal(got, []string{"tokA"}) {
			t.Errorf("tokens under the second key %v", got)
		}
		if got, err := b.IndexTokens(ctx, "sub:p:none"); len(got) != 0 || err != nil {
			t.Errorf("an unknown key: %v %v", got, err)
		}
		offset.Add(int64(2 * time.Minute)) // tokB's session has expired
		if got, _ := b.IndexTokens(ctx, "sub:p:1"); !slices.Equal(got, []string{"tokA"}) {
			t.Errorf("after expiry %v", got)
		}
		must(b.IndexRemove(ctx, "sid:p:s"))
		if got, _ := b.IndexTokens(ctx, "sid:p:s"); len(got) != 0 {
			t.Errorf("after remove %v", got)
		}
		if got, _ := b.IndexTokens(ctx, "sub:p:1"); !slices.Equal(got, []string{"tokA"}) {
			t.Errorf("removing one key changed another: %v", got)
		}
	})

	t.Run("once", func(t *testing.T) {
		if fresh, err := b.Once(ctx, "jti:x", 200*time.Millisecond); !fresh || err != nil {
			t.Errorf("first once: %v %v", fresh, err)
		}
		if fresh, _ := b.Once(ctx, "jti:x", time.Minute); fresh {
			t.Error("second once is fresh")
		}
		if fresh, _ := b.Once(ctx, "jti:y", time.Minute); !fresh {
			t.Error("another key is not fresh")
		}
		time.Sleep(300 * time.Millisecond)
		if fresh, _ := b.Once(ctx, "jti:x", time.Minute); !fresh {
			t.Error("once after its ttl is not fresh")
		}
		// Of concurrent callers, exactly one gets the key.
		var wg sync.WaitGroup
		var won atomic.Int32
		for range 16 {
			wg.Go(func() {
				if fresh, err := b.Once(ctx, "jti:race", time.Minute); fresh && err == nil {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Errorf("%d concurrent callers got the key, want 1", n)
		}
	})

	t.Run("lock", func(t *testing.T) {
		release, ok, err := b.Lock(ctx, "refresh:tok", time.Minute)
		if !ok || err != nil {
			t.Fatalf("lock not taken: %v", err)
		}
		if _, ok, _ := b.Lock(ctx, "refresh:tok", time.Minute); ok {
			t.Error("lock taken twice")
		}
		release()
		if _, ok, _ := b.Lock(ctx, "refresh:tok", time.Minute); !ok {
			t.Error("lock not free after release")
		}
		// A holder whose lock expired and went to another does not
		// release it.
		stale, ok, _ := b.Lock(ctx, "k2", 100*time.Millisecond)
		if !ok {
			t.Fatal("lock k2 not taken")
		}
		time.Sleep(200 * time.Millisecond)
		if _, ok, _ := b.Lock(ctx, "k2", time.Minute); !ok {
			t.Fatal("expired lock not taken over")
		}
		stale()
		if _, ok, _ := b.Lock(ctx, "k2", time.Minute); ok {
			t.Error("a stale holder released another's lock")
		}
	})

	t.Run("secret", func(t *testing.T) {
		a, err := b.Secret(ctx, "pending")
		must(err)
		again, err := b.Secret(ctx, "pending")
		must(err)
		other, err := b.Secret(ctx, "other")
		must(err)
		if len(a) != 32 || !bytes.Equal(a, again) {
			t.Errorf("secret %x, then %x: want the same 32 bytes", a, again)
		}
		if bytes.Equal(a, other) {
			t.Error("two names, one secret")
		}
	})

	t.Run("ping", func(t *testing.T) { must(b.Ping(ctx)) })
}

func testRedisStore(t *testing.T, r *redisserver.Server, now func() time.Time) *Redis {
	t.Helper()
	return testRedisStoreWith(t, RedisConfig{Address: r.Addr, KeyPrefix: "t:"}, now)
}

// testRedisWaiting is testRedisStore waiting for one replica for at most
// timeout (session.redis.wait), with none to confirm.
func testRedisWaiting(t *testing.T, r *redisserver.Server, timeout time.Duration) *Redis {
	t.Helper()
	one := 1
	return testRedisStoreWith(t, RedisConfig{Address: r.Addr, KeyPrefix: "t:", Wait: WaitConfig{Replicas: &one, Timeout: timeout}}, time.Now)
}

func testRedisStoreWith(t *testing.T, cfg RedisConfig, now func() time.Time) *Redis {
	t.Helper()
	s, err := NewRedis(cfg, 0, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
