package session

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/relay"
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

// TestDecodeCacheBudget: the decode cache's budget counts what its entries
// really keep. Filled far past its budget with sessions like a login's
// (identity, packed tokens, the broker's relay headers as derived), the
// heap it holds, measured, stays within the budget, and is most of it (the
// accounting is not so generous that the cache holds little).
func TestDecodeCacheBudget(t *testing.T) {
	const budget = 1 << 20
	derive := func(id providers.Identity) any { h := relay.HeadersOf(id); return &h }
	codec := &sessionCodec{cache: newDecodeCache(budget), derive: derive}
	session := func(i int) []byte {
		id := packIdentity
		id.Subject = fmt.Sprintf("user-%06d", i)
		id.Email = id.Subject + "@alpha.example"
		id.Groups = []string{"admins", "engineering", fmt.Sprintf("team-%d", i%50)}
		payload := strings.ReplaceAll(demoPayload, "alpha-alice", id.Subject)
		payload = strings.ReplaceAll(payload, "alice@alpha.example", id.Email)
		b, err := codec.Encode(time.Now().Add(time.Hour), map[string]any{keyIdentity: id,
			keyTokens: Tokens{IDToken: testJWS(payload), Expiry: time.Now().Add(time.Hour)}, keyCSRF: randomToken()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	session(-1) // warms the packing (its pooled matcher is not the cache's)
	before := heap()
	for i := range 2_000 {
		if _, err := codec.decodeShared(session(i)); err != nil {
			t.Fatal(err)
		}
	}
	held := int64(heap()) - int64(before)
	n, size := len(codec.cache.m), codec.cache.size
	t.Logf("%d sessions cached, %d bytes accounted (%d each), %d bytes of heap measured", n, size, size/max(n, 1), held)
	if size > budget {
		t.Errorf("accounted %d bytes, over the budget %d", size, budget)
	}
	const noise = 32 << 10 // what the runtime allocates meanwhile
	if held > budget+noise {
		t.Errorf("the cache holds %d bytes of heap, over its budget %d: the accounting misses some", held, budget)
	}
	if held < budget/2 {
		t.Errorf("the cache holds %d bytes of heap, under half its budget %d: the accounting is too generous", held, budget)
	}
	runtime.KeepAlive(codec)
}

// TestDecodeCacheSweep: entries leave at a sweep once their session has
// ended, or nobody read them since the sweep before; those in use stay.
func TestDecodeCacheSweep(t *testing.T) {
	now := time.Now()
	codec := &sessionCodec{cache: newDecodeCache(1 << 20)}
	codec.cache.now, codec.cache.swept = func() time.Time { return now }, now
	encode := func(csrf string, deadline time.Time) []byte {
		b, err := codec.Encode(deadline, map[string]any{keyCSRF: csrf})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := codec.decodeShared(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	ending := encode("ending", now.Add(90*time.Second))
	unread := encode("unread", now.Add(time.Hour))
	read := encode("read", now.Add(time.Hour))
	cached := func(b []byte) bool { _, ok := codec.cache.shared(b); return ok }

	now = now.Add(decodeSweep)
	encode("trigger 1", now.Add(time.Hour)) // the sweep: marks every entry unread
	now = now.Add(decodeSweep / 2)
	if !cached(read) || !cached(ending) {
		t.Fatal("entries gone before their time")
	}
	now = now.Add(decodeSweep / 2)
	encode("trigger 2", now.Add(time.Hour))
	if !cached(read) {
		t.Error("an entry read since the last sweep was dropped")
	}
	if _, ok := codec.cache.m[string(unread)]; ok {
		t.Error("an entry nobody read for a sweep interval stays")
	}
	if _, ok := codec.cache.m[string(ending)]; ok {
		t.Error("an entry whose session ended stays")
	}
	size := 0
	for _, e := range codec.cache.m {
		size += e.cost
	}
	if size != codec.cache.size {
		t.Errorf("entries cost %d, the cache counts %d", size, codec.cache.size)
	}
}
