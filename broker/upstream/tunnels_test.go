package upstream

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// TestTunnelRegistry: the registry's bounds. A session holds at most
// MaxTunnelsPerSession tunnels; closing tunnels removes every trace of them,
// and the check loop stops with the last one; an invalidation checks its
// session at once; after CloseAll nothing opens.
func TestTunnelRegistry(t *testing.T) {
	var mu sync.Mutex
	gone := map[string]bool{}
	reg := NewTunnels(TunnelsConfig{Interval: time.Hour, Alive: func(_ context.Context, token string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return !gone[token], nil
	}})
	var dones []func()
	var ctxs []context.Context
	for i := range MaxTunnelsPerSession {
		ctx, done, err := reg.Open(context.Background(), "a")
		if err != nil {
			t.Fatalf("tunnel %d: %v", i+1, err)
		}
		ctxs, dones = append(ctxs, ctx), append(dones, done)
	}
	if _, _, err := reg.Open(context.Background(), "a"); !errors.Is(err, ErrTooManyTunnels) {
		t.Fatalf("one tunnel too many: %v", err)
	}
	bCtx, bDone, err := reg.Open(context.Background(), "b")
	if err != nil {
		t.Fatalf("another session: %v", err)
	}
	// Closing tunnels (twice, even) removes them; the session goes with its
	// last one.
	for _, done := range dones[1:] {
		done()
		done()
	}
	if s, n := reg.Size(); s != 2 || n != 2 {
		t.Fatalf("%d sessions, %d tunnels; want 2, 2", s, n)
	}
	if ctxs[0].Err() != nil {
		t.Fatal("closing other tunnels canceled this one")
	}
	// Ending a session cancels its tunnels.
	if n := reg.End("a"); n != 1 || ctxs[0].Err() == nil {
		t.Fatalf("end: %d tunnels, context %v", n, ctxs[0].Err())
	}
	dones[0]()
	// An invalidation of a session that is gone closes its tunnels at once
	// (the period is an hour); of one that still exists, nothing.
	reg.Invalidated(store.HashOf("b"))
	time.Sleep(50 * time.Millisecond)
	if bCtx.Err() != nil {
		t.Fatal("an invalidation closed the tunnel of a session that exists")
	}
	mu.Lock()
	gone["b"] = true
	mu.Unlock()
	reg.Invalidated(store.HashOf("b"))
	select {
	case <-bCtx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the invalidation of an ended session did not close its tunnel")
	}
	bDone()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		reg.mu.Lock()
		running := reg.running
		reg.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the check loop did not stop")
		}
	}
	if len(reg.sessions)+len(reg.byHash)+len(reg.due) != 0 {
		t.Errorf("left behind: %d sessions, %d hashes, %d due", len(reg.sessions), len(reg.byHash), len(reg.due))
	}
	// CloseAll closes what is open and refuses what comes.
	cCtx, _, _ := reg.Open(context.Background(), "c")
	reg.CloseAll()
	if cCtx.Err() == nil {
		t.Error("closeAll left a tunnel open")
	}
	if _, _, err := reg.Open(context.Background(), "d"); !errors.Is(err, ErrTunnelsClosed) {
		t.Errorf("a tunnel after CloseAll: %v", err)
	}
}
