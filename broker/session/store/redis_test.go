package store

import (
	"context"
	"errors"
	"fmt"
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
	sub, err := redis.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	psc := redis.PubSubConn{Conn: sub}
	if err := psc.Subscribe(s.channel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("not subscribed")
	}
	commit := func(token, key string) bool {
		t.Helper()
		written, err := s.CommitUnlessIndexedCtx(ctx, token, []byte("v-"+token), exp, key)
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
