package session

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestDecodeCacheCopies: sessions loaded from the same bytes share what was
// decoded, but each has its own values: a Put, Remove or Destroy on one
// never changes what another load sees.
func TestDecodeCacheCopies(t *testing.T) {
	s := New(Config{CookieName: "s", Lifetime: time.Hour}, store.NewMemorySessions(), func(providers.Identity) any { return new(int) })
	sm := s.sm
	ctx, _ := sm.Load(context.Background(), "")
	sm.Put(ctx, keyIdentity, providers.Identity{Provider: "p", Subject: "alice", Groups: []string{"a", "b"}})
	sm.Put(ctx, keyPending, map[string]legacyPending{"state-1": {Provider: "p"}})
	token, _, err := sm.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	load := func() context.Context {
		t.Helper()
		ctx, err := sm.Load(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		return ctx
	}
	one, two := load(), load()
	id1, _ := s.Identity(one)
	id2, _ := s.Identity(two)
	if &id1.Groups[0] != &id2.Groups[0] {
		t.Fatal("the second load decoded again: the cache was not used, and this test proves nothing")
	}

	sm.Put(one, keyCSRF, "changed")
	sm.Remove(one, keyPending)
	sm.Put(one, keyIdentity, providers.Identity{Provider: "p", Subject: "mallory"})
	for i, ctx := range []context.Context{two, load()} {
		if id, _ := s.Identity(ctx); id.Subject != "alice" {
			t.Errorf("load %d: identity %q after a Put on another load", i, id.Subject)
		}
		if sm.Exists(ctx, keyCSRF) {
			t.Errorf("load %d sees another load's Put", i)
		}
		if p, _ := sm.Get(ctx, keyPending).(map[string]legacyPending); len(p) != 1 {
			t.Errorf("load %d: pending %v after a Remove on another load", i, p)
		}
	}
	if err := sm.Destroy(one); err != nil {
		t.Fatal(err)
	}
	if id, ok := s.Identity(two); !ok || id.Subject != "alice" {
		t.Errorf("another load's Destroy emptied this one: %+v", id)
	}
}

// TestDecodeCacheBound: the cache holds at most its size in encoded bytes,
// leaves out sessions too large for it, and what it dropped decodes again.
func TestDecodeCacheBound(t *testing.T) {
	const max = 4 << 10
	codec := &sessionCodec{cache: newDecodeCache(max)}
	var encoded [][]byte
	for i := range 100 {
		b, err := codec.Encode(time.Unix(int64(i), 0), map[string]any{keyCSRF: fmt.Sprintf("value %03d", i)})
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
		if _, _, err := codec.Decode(b); err != nil {
			t.Fatal(err)
		}
		if codec.cache.size > max {
			t.Fatalf("after %d sessions the cache holds %d bytes, more than %d", i+1, codec.cache.size, max)
		}
	}
	n := len(codec.cache.m)
	if n == 0 || n >= 100 {
		t.Fatalf("%d of 100 sessions cached in %d bytes (each about %d)", n, max, len(encoded[0]))
	}
	for i, b := range encoded {
		deadline, values, err := codec.Decode(b)
		if err != nil || deadline.Unix() != int64(i) || values[keyCSRF] != fmt.Sprintf("value %03d", i) {
			t.Errorf("session %d decodes to %v %v %v", i, deadline, values, err)
		}
	}
	big, _ := codec.Encode(time.Unix(1, 0), map[string]any{keyCSRF: string(make([]byte, max))})
	if _, _, err := codec.Decode(big); err != nil {
		t.Fatal(err)
	}
	if _, ok := codec.cache.shared(big); ok {
		t.Error("a session larger than the cache was cached")
	}
}
