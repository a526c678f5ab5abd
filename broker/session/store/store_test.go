package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestMemorySessions: the memory store finds a session until its expiry,
// and a write sweeps out the expired ones once every sweep interval.
// The memory store.Backend forgets expired index entries and marks, on a write
// once the sweep interval has passed, and not before.
func TestMemoryBackendSweeps(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Unix(1_000_000, 0).Add(time.Duration(offset.Load())) }
	m := NewMemoryBackend(now)
	ctx := context.Background()
	_ = m.IndexAdd(ctx, []string{"sub:p:1"}, "short", now().Add(time.Second))
	_ = m.IndexAdd(ctx, []string{"sub:p:2"}, "long", now().Add(time.Hour))
	_, _ = m.Once(ctx, "jti:x", time.Second)
	offset.Store(int64(memorySweepInterval / 2))
	_ = m.IndexAdd(ctx, []string{"sub:p:3"}, "other", now().Add(time.Hour))
	if len(m.index) != 3 || len(m.marks) != 1 {
		t.Fatalf("swept before the interval: %d index keys, %d marks", len(m.index), len(m.marks))
	}
	offset.Store(int64(memorySweepInterval))
	_ = m.IndexAdd(ctx, []string{"sub:p:4"}, "fourth", now().Add(time.Hour))
	if _, kept := m.index["sub:p:1"]; kept || len(m.index) != 3 || len(m.marks) != 0 {
		t.Errorf("after the interval: index %v, marks %v; want the expired entries gone", m.index, m.marks)
	}
}

func TestMemorySessions(t *testing.T) {
	m := NewMemorySessions()
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
