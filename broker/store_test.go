package broker

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryBackend(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Unix(1_000_000, 0).Add(time.Duration(offset.Load())) }
	m := newMemoryBackend(now)
	ctx := context.Background()
	_ = m.indexAdd(ctx, []string{"sub:p:1", "sid:p:s"}, "tokA", now().Add(time.Hour))
	_ = m.indexAdd(ctx, []string{"sub:p:1"}, "tokB", now().Add(time.Minute))
	got, _ := m.indexTokens(ctx, "sub:p:1")
	slices.Sort(got)
	if !slices.Equal(got, []string{"tokA", "tokB"}) {
		t.Errorf("tokens %v", got)
	}
	offset.Store(int64(2 * time.Minute)) // tokB's session has expired
	if got, _ := m.indexTokens(ctx, "sub:p:1"); !slices.Equal(got, []string{"tokA"}) {
		t.Errorf("after expiry %v", got)
	}
	_ = m.indexRemove(ctx, "sid:p:s")
	if got, _ := m.indexTokens(ctx, "sid:p:s"); len(got) != 0 {
		t.Errorf("after remove %v", got)
	}

	if fresh, _ := m.once(ctx, "jti:x", time.Minute); !fresh {
		t.Error("first once is not fresh")
	}
	if fresh, _ := m.once(ctx, "jti:x", time.Minute); fresh {
		t.Error("second once is fresh")
	}
	offset.Add(int64(2 * time.Minute))
	if fresh, _ := m.once(ctx, "jti:x", time.Minute); !fresh {
		t.Error("once after its ttl is not fresh")
	}

	release, ok, _ := m.lock(ctx, "refresh:tok", time.Minute)
	if !ok {
		t.Fatal("lock not taken")
	}
	if _, ok, _ := m.lock(ctx, "refresh:tok", time.Minute); ok {
		t.Error("lock taken twice")
	}
	release()
	if _, ok, _ := m.lock(ctx, "refresh:tok", time.Minute); !ok {
		t.Error("lock not free after release")
	}
}

func TestLoginIsIndexed(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	toks, err := e.server.store.indexTokens(context.Background(), subKey("alpha", "alpha-alice"))
	if err != nil || len(toks) != 1 {
		t.Fatalf("index: %v %v", toks, err)
	}
	// The indexed token is the live session: deleting it signs the user out.
	if err := e.server.sessions.sm.Store.Delete(toks[0]); err != nil {
		t.Fatal(err)
	}
	if e.signedIn(e.client) {
		t.Error("still signed in after the indexed session was deleted")
	}
}

// TestMemorySessions: the memory store finds a session until its expiry,
// and a write sweeps out the expired ones once every sweep interval.
// The memory backend forgets expired index entries and marks, on a write
// once the sweep interval has passed, and not before.
func TestMemoryBackendSweeps(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Unix(1_000_000, 0).Add(time.Duration(offset.Load())) }
	m := newMemoryBackend(now)
	ctx := context.Background()
	_ = m.indexAdd(ctx, []string{"sub:p:1"}, "short", now().Add(time.Second))
	_ = m.indexAdd(ctx, []string{"sub:p:2"}, "long", now().Add(time.Hour))
	_, _ = m.once(ctx, "jti:x", time.Second)
	offset.Store(int64(memorySweepInterval / 2))
	_ = m.indexAdd(ctx, []string{"sub:p:3"}, "other", now().Add(time.Hour))
	if len(m.index) != 3 || len(m.marks) != 1 {
		t.Fatalf("swept before the interval: %d index keys, %d marks", len(m.index), len(m.marks))
	}
	offset.Store(int64(memorySweepInterval))
	_ = m.indexAdd(ctx, []string{"sub:p:4"}, "fourth", now().Add(time.Hour))
	if _, kept := m.index["sub:p:1"]; kept || len(m.index) != 3 || len(m.marks) != 0 {
		t.Errorf("after the interval: index %v, marks %v; want the expired entries gone", m.index, m.marks)
	}
}

func TestMemorySessions(t *testing.T) {
	m := newMemorySessions()
	now := time.Now()
	_ = m.Commit("live", []byte("a"), now.Add(time.Hour))
	_ = m.Commit("ended", []byte("b"), now.Add(-time.Second))
	if b, found, _ := m.Find("live"); !found || string(b) != "a" {
		t.Errorf("live: %q %v", b, found)
	}
	if _, found, _ := m.Find("ended"); found {
		t.Error("an expired session was found")
	}
	if len(m.items) != 2 {
		t.Fatalf("%d sessions kept before the sweep interval, want 2", len(m.items))
	}
	m.swept = now.Add(-memorySweepInterval)
	_ = m.Commit("other", []byte("c"), now.Add(time.Hour))
	if _, kept := m.items["ended"]; kept || len(m.items) != 2 {
		t.Errorf("after a sweep: %d sessions, the expired one kept: %v", len(m.items), kept)
	}
	_ = m.Delete("live")
	if _, found, _ := m.Find("live"); found {
		t.Error("a deleted session was found")
	}
}
