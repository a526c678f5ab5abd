package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// TestRedisStoreMatchesRedisstore: sessions are stored as scs/redisstore
// stores them, so each reads the other's.
func TestRedisStoreMatchesRedisstore(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisStore(t, r, time.Now)
	rs := redisstore.NewWithPrefix(s.pool, "t:session:")
	exp := time.Now().Add(time.Hour)
	if err := s.Commit("ours", []byte("data-1"), exp); err != nil {
		t.Fatal(err)
	}
	if b, found, err := rs.Find("ours"); err != nil || !found || string(b) != "data-1" {
		t.Errorf("redisstore reads %q %v %v", b, found, err)
	}
	if err := rs.Commit("theirs", []byte("data-2"), exp); err != nil {
		t.Fatal(err)
	}
	if b, found, err := s.FindCtx(context.Background(), "theirs"); err != nil || !found || string(b) != "data-2" {
		t.Errorf("we read %q %v %v", b, found, err)
	}
	if ms, _ := redis.Int64(r.Do("PEXPIRETIME", "t:session:ours"), nil); ms != exp.UnixMilli() {
		t.Errorf("expiry %d, want %d", ms, exp.UnixMilli())
	}
	if err := s.Delete("theirs"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := rs.Find("theirs"); found {
		t.Error("deleted session found")
	}
}

// TestRedisBackendKeys: what the conformance suite cannot see of the
// Redis backend: an index set lives as long as its latest session and only
// grows so, drops expired members on a later add, and every key is under
// the prefix.
func TestRedisBackendKeys(t *testing.T) {
	r := redisserver.Start(t)
	base := time.Now()
	var offset time.Duration
	now := func() time.Time { return base.Add(offset) }
	s := testRedisStore(t, r, now)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.IndexAdd(ctx, []string{"sub:p:1", "sid:p:s"}, "tokA", now().Add(time.Hour)))
	must(s.IndexAdd(ctx, []string{"sub:p:1"}, "tokB", now().Add(time.Minute)))
	ttl := func(key string) time.Duration {
		ms, _ := redis.Int64(r.Do("PTTL", "t:index:"+key), nil)
		return time.Duration(ms) * time.Millisecond
	}
	if d := ttl("sub:p:1"); d < 59*time.Minute || d > time.Hour {
		t.Errorf("index TTL %v, want about an hour", d)
	}
	must(s.IndexAdd(ctx, []string{"sub:p:1"}, "tokC", now().Add(2*time.Minute)))
	if d := ttl("sub:p:1"); d < 59*time.Minute {
		t.Errorf("index TTL shrank to %v", d)
	}
	offset = 3 * time.Minute                                                 // tokB's and tokC's sessions have expired
	must(s.IndexAdd(ctx, []string{"sub:p:1"}, "tokD", now().Add(time.Hour))) // drops the expired
	if n, _ := redis.Int(r.Do("ZCARD", "t:index:sub:p:1"), nil); n != 2 {
		t.Errorf("%d members after a later add, want 2 (expired ones dropped)", n)
	}
	_, _ = s.Once(ctx, "jti:x", time.Minute)
	if release, ok, _ := s.Lock(ctx, "k", time.Minute); ok {
		defer release()
	}
	_, _ = s.Secret(ctx, "pending")
	keys, _ := redis.Strings(r.Do("KEYS", "*"), nil)
	for _, k := range keys {
		if !strings.HasPrefix(k, "t:") {
			t.Errorf("key %q is outside the prefix", k)
		}
	}
}

// TestRedisGuardedCommit: the revocation guard's check and write in one
// script: the session is written (as CommitCtx writes it, with its
// expiry, and its invalidation published) unless the index key lists a
// live token, in Redis or in the journal; also when Redis lost its
// scripts (NOSCRIPT: sent again whole).
func TestRedisGuardedCommit(t *testing.T) {
	r := redisserver.Start(t)
	base := time.Now()
	var offset time.Duration
	s := testRedisStore(t, r, func() time.Time { return base.Add(offset) })
	ctx := context.Background()
	exp := base.Add(time.Hour)
	psc := subscribed(t, r, s.channel)
	commit := func(token, key string) bool {
		t.Helper()
		written, err := s.CommitUnlessIndexedCtx(ctx, token, []byte("v-"+token), exp, key, Addition{})
		if err != nil {
			t.Fatal(err)
		}
		return written
	}
	r.Do("SCRIPT", "FLUSH")
	if !commit("a", "revoked:a") {
		t.Fatal("not written, with nothing in the index (and no script loaded)")
	}
	if b, _ := redis.String(r.Do("GET", "t:session:a"), nil); b != "v-a" {
		t.Errorf("stored %q", b)
	}
	if ms, _ := redis.Int64(r.Do("PEXPIRETIME", "t:session:a"), nil); ms != exp.UnixMilli() {
		t.Errorf("expiry %d, want %d", ms, exp.UnixMilli())
	}
	if m, ok := psc.Receive().(redis.Message); !ok || string(m.Data) != HashOf("a").String() {
		t.Errorf("invalidation %#v", m)
	}

	if err := s.IndexAdd(ctx, []string{"revoked:b"}, "b", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if commit("b", "revoked:b") {
		t.Error("written although revoked")
	}
	if n, _ := redis.Int(r.Do("EXISTS", "t:session:b"), nil); n != 0 {
		t.Error("a revoked session is in Redis")
	}
	offset = 2 * time.Minute // the mark has ended
	if !commit("b", "revoked:b") {
		t.Error("not written after the mark ended")
	}

	s.journal.addIndex([]string{"revoked:c"}, "c", base.Add(time.Hour))
	if commit("c", "revoked:c") {
		t.Error("written although revoked in the journal")
	}
}

// TestRedisGuardedCommitIndexes: a login's commit (Addition) lists the
// token in the index in the same script, as IndexAdd does, and publishes
// nothing for a fresh token; a revoked one is neither written nor indexed.
func TestRedisGuardedCommitIndexes(t *testing.T) {
	r := redisserver.Start(t)
	base := time.Now()
	s := testRedisStore(t, r, func() time.Time { return base })
	ctx := context.Background()
	psc := subscribed(t, r, s.channel)
	exp, until := base.Add(time.Hour), base.Add(2*time.Hour)
	// An older session of the user, ended (its deadline passed): dropped.
	r.Do("ZADD", "t:index:sub:p:1", base.Add(-time.Second).UnixMilli(), "old")
	keys := []string{"sub:p:1", "sid:p:s"}
	written, err := s.CommitUnlessIndexedCtx(ctx, "new", []byte("v"), exp, "revoked:new", Addition{Keys: keys, Until: until, Fresh: true})
	if err != nil || !written {
		t.Fatalf("written %v, %v", written, err)
	}
	if b, _ := redis.String(r.Do("GET", "t:session:new"), nil); b != "v" {
		t.Errorf("stored %q", b)
	}
	for _, k := range keys {
		if got, err := s.IndexTokens(ctx, k); err != nil || !slices.Equal(got, []string{"new"}) {
			t.Errorf("index %s: %v %v, want [new]", k, got, err)
		}
		if ms, _ := redis.Int64(r.Do("PEXPIRETIME", "t:index:"+k), nil); ms != until.UnixMilli() {
			t.Errorf("index %s expires at %d, want %d (its last member's)", k, ms, until.UnixMilli())
		}
	}
	if n, _ := redis.Int(r.Do("ZCARD", "t:index:sub:p:1"), nil); n != 1 {
		t.Errorf("the index keeps %d members, want 1 (the ended one dropped)", n)
	}
	// Not fresh: published. The first message is this one's: the fresh
	// write published none.
	if _, err := s.CommitUnlessIndexedCtx(ctx, "again", []byte("v"), exp, "revoked:again", Addition{}); err != nil {
		t.Fatal(err)
	}
	if m, ok := psc.Receive().(redis.Message); !ok || string(m.Data) != HashOf("again").String() {
		t.Errorf("first invalidation %#v, want the second write's (the fresh one publishes none)", m)
	}

	if err := s.IndexAdd(ctx, []string{"revoked:gone"}, "gone", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	written, err = s.CommitUnlessIndexedCtx(ctx, "gone", []byte("v"), exp, "revoked:gone", Addition{Keys: []string{"sub:p:2"}, Until: until, Fresh: true})
	if err != nil || written {
		t.Errorf("revoked: written %v, %v", written, err)
	}
	if n, _ := redis.Int(r.Do("EXISTS", "t:session:gone", "t:index:sub:p:2"), nil); n != 0 {
		t.Errorf("a revoked session left %d keys (session, index)", n)
	}

	// A login's single-use state, marked in the same step: the first
	// commit marks it (as Once would, with its ttl), a second with the
	// same mark writes and indexes nothing, and Once sees it used.
	spend := Addition{Keys: []string{"sub:p:3"}, Until: until, Fresh: true, Once: "state:s1", OnceTTL: 10 * time.Minute}
	if written, err := s.CommitUnlessIndexedCtx(ctx, "first", []byte("v"), exp, "revoked:first", spend); err != nil || !written {
		t.Fatalf("first use of the mark: written %v, %v", written, err)
	}
	if ms, _ := redis.Int64(r.Do("PTTL", "t:once:state:s1"), nil); ms <= 9*60*1000 || ms > 10*60*1000 {
		t.Errorf("the mark expires in %d ms, want 10 minutes", ms)
	}
	written, err = s.CommitUnlessIndexedCtx(ctx, "second", []byte("v"), exp, "revoked:second", spend)
	if !errors.Is(err, ErrOnceUsed) || written {
		t.Errorf("the mark used again: written %v, %v; want ErrOnceUsed", written, err)
	}
	if n, _ := redis.Int(r.Do("EXISTS", "t:session:second"), nil); n != 0 {
		t.Error("a replayed mark wrote its session")
	}
	if got, _ := s.IndexTokens(ctx, "sub:p:3"); !slices.Equal(got, []string{"first"}) {
		t.Errorf("index after the replay: %v, want [first]", got)
	}
	if fresh, err := s.Once(ctx, "state:s1", time.Minute); err != nil || fresh {
		t.Errorf("Once after the commit's mark: fresh %v, %v", fresh, err)
	}
}

// TestRedisGuardedCommitJournalsIndex: with wait.replicas and no replica
// to confirm, a login's index entries are kept in the journal, as
// IndexAdd's are.
func TestRedisGuardedCommitJournalsIndex(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisWaiting(t, r, 50*time.Millisecond)
	exp := time.Now().Add(time.Hour)
	written, err := s.CommitUnlessIndexedCtx(context.Background(), "tok", []byte("v"), exp, "revoked:tok",
		Addition{Keys: []string{"sub:p:1", "sid:p:s"}, Until: exp, Fresh: true})
	if err != nil || !written {
		t.Fatalf("written %v, %v", written, err)
	}
	if n := s.Pending(); n != 2 {
		t.Errorf("%d writes kept, want 2 (the two index entries)", n)
	}
}

// TestRedisVersionHint: what a Redis older than 7.0 answers the broker's
// SET (a syntax error) says what the store needs; other errors are left
// as they are.
func TestRedisVersionHint(t *testing.T) {
	r := redisserver.Start(t)
	c, err := redis.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Do("SET", "k", "v", "NX", "GET", "PX", 1, "BOGUS") // a syntax error, as 6.2 answers NX with GET
	if err = versionHint(err); !strings.Contains(fmt.Sprint(err), "Redis 7.0 or later") {
		t.Errorf("syntax error: %v", err)
	}
	var re redis.Error
	if !errors.As(err, &re) {
		t.Errorf("the hint hides the Redis error: %v", err)
	}
	if err := versionHint(redis.Error("WRONGTYPE Operation against a key")); strings.Contains(err.Error(), "7.0") {
		t.Errorf("other error: %v", err)
	}
}

// subscribed is a connection subscribed to channel (the invalidations),
// closed at the test's end.
func subscribed(t *testing.T, r *redisserver.Server, channel string) redis.PubSubConn {
	t.Helper()
	sub, err := redis.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	psc := redis.PubSubConn{Conn: sub}
	if err := psc.Subscribe(channel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("not subscribed")
	}
	return psc
}
