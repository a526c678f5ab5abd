package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// TestRedisReconnectAfterRestart: after Redis restarts (here 2 seconds
// down), every idle pooled connection is dead; a request that gets one
// retries once on a fresh connection, so none fails once Redis answers
// (before: one failure per idle connection, 32 with the default pool).
func TestRedisReconnectAfterRestart(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisStore(t, r, time.Now)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	if err := s.Commit("tok", []byte("data"), exp); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with idle connections: 32 concurrent reads.
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range DefaultRedisPoolMaxIdle {
		wg.Go(func() {
			_ = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
				<-hold
				_, err := redis.DoContext(c, ctx, "PING")
				return err
			})
		})
	}
	waitFor(t, 10*time.Second, "every connection taken", func() bool { return s.pool.Stats().ActiveCount == DefaultRedisPoolMaxIdle })
	close(hold)
	wg.Wait()
	if idle := s.pool.Stats().IdleCount; idle != DefaultRedisPoolMaxIdle {
		t.Fatalf("%d idle connections, want %d", idle, DefaultRedisPoolMaxIdle)
	}
	r.Stop()
	time.Sleep(2 * time.Second)
	r.Restart()
	var mu sync.Mutex
	var errs []error
	for range 2 * DefaultRedisPoolMaxIdle {
		wg.Go(func() {
			b, found, err := s.FindCtx(ctx, "tok")
			if err == nil && (!found || string(b) != "data") {
				err = errors.New("session not found after the restart")
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed after the restart, first: %v", len(errs), 2*DefaultRedisPoolMaxIdle, errs[0])
	}
}

// TestRedisClusterRefused: a Redis Cluster node is refused with an error
// that says so, at the first connection (docs/sessions.md#redis-cluster).
func TestRedisClusterRefused(t *testing.T) {
	r := redisserver.StartWith(t, redisserver.Options{Args: []string{"--cluster-enabled", "yes"}})
	s := testRedisStore(t, r, time.Now)
	err := s.Ping(context.Background())
	if !errors.Is(err, ErrCluster) || !strings.Contains(err.Error(), r.Addr) {
		t.Errorf("ping of a cluster node: %v; want ErrCluster naming %s", err, r.Addr)
	}
}

// TestRedisJournalKeepsRevocations: with wait.replicas, a deletion or an
// index entry that no replica confirms is kept: this replica treats the
// session as deleted and the entry as present, and writes them again
// (here over a session that came back, as a failover to a replica that
// missed the deletion would bring it) until a replica confirms them.
func TestRedisJournalKeepsRevocations(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisWaiting(t, r, 100*time.Millisecond)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	if err := s.Commit("tok", []byte("data"), exp); err != nil { // unconfirmed, logged, done
		t.Fatal(err)
	}
	if err := s.DeleteCtx(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := s.IndexAdd(ctx, []string{"revoked:tok"}, "tok", exp); err != nil {
		t.Fatal(err)
	}
	if n := s.Pending(); n != 2 {
		t.Fatalf("%d writes kept, want 2 (the deletion, the index entry)", n)
	}
	// The primary loses both, as a failover to a replica that missed them
	// would.
	r.Do("SET", "t:session:tok", "data")
	r.Do("DEL", "t:index:revoked:tok")
	if _, found, err := s.FindCtx(ctx, "tok"); found || err != nil {
		t.Errorf("a session whose deletion is kept was found (%v)", err)
	}
	if got, err := s.IndexTokens(ctx, "revoked:tok"); err != nil || len(got) != 1 {
		t.Errorf("a kept index entry: %v %v", got, err)
	}
	waitFor(t, 20*time.Second, "the deletion written again", func() bool { return r.Do("EXISTS", "t:session:tok").(int64) == 0 })
	if n := s.Pending(); n != 2 {
		t.Errorf("%d writes kept while no replica confirms, want 2", n)
	}
	replica := redisserver.StartWith(t, redisserver.Options{ReplicaOf: r.Addr})
	waitFor(t, 20*time.Second, "the journal confirmed by the replica", func() bool { return s.Pending() == 0 })
	if n, _ := redis.Int(replica.Do("EXISTS", "t:session:tok", "t:index:revoked:tok"), nil); n != 1 {
		t.Errorf("the replica has %d of the index entry and no session, want 1", n)
	}
}

// TestErrorLogKinds: an error of a new kind is logged at once, even within
// the interval of another (the dead connections after a restart used to
// be counted, silently, behind the refused dials of the outage).
func TestErrorLogKinds(t *testing.T) {
	l := ErrorLog{Interval: 10 * time.Second}
	now := time.Unix(1_000_000, 0)
	refused := ErrorKind(&netOpError)
	if ok, _ := l.AllowKind(now, refused); !ok {
		t.Fatal("first error not logged")
	}
	if ok, _ := l.AllowKind(now.Add(time.Second), refused); ok {
		t.Error("a second refused dial logged within the interval")
	}
	if ok, skipped := l.AllowKind(now.Add(2*time.Second), ErrorKind(redis.Error("READONLY You can't write against a read only replica."))); !ok || skipped != 1 {
		t.Errorf("a new kind: logged %v, skipped %d; want logged with 1 skipped", ok, skipped)
	}
	if ok, _ := l.AllowKind(now.Add(11*time.Second), refused); !ok {
		t.Error("not logged after the interval")
	}
}

var netOpError = net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

// TestRedisWaitDegraded: once replicas failed to confirm a write, the
// writes of the next few seconds do not wait for them (each would wait
// the whole wait.timeout while a failover left the primary alone).
func TestRedisWaitDegraded(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisWaiting(t, r, 100*time.Millisecond)
	for i := range 10 {
		if err := s.Commit("tok", []byte{byte(i)}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	stats, _ := redis.String(r.Do("INFO", "commandstats"), nil)
	if !strings.Contains(stats, "cmdstat_wait:calls=1,") {
		t.Errorf("WAIT calls: %q; want 1 for 10 writes", grepLine(stats, "cmdstat_wait"))
	}
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestRedisConfigProblems: each wrong HA setting is reported with its
// field's path.
func TestRedisConfigProblems(t *testing.T) {
	neg, one := -1, 1
	for _, c := range []struct {
		name string
		cfg  RedisConfig
		want string
	}{
		{"address and sentinel", RedisConfig{Address: "r:6379", Sentinel: SentinelConfig{Addresses: []string{"s:26379"}, Master: "m"}}, "session.redis.address: must not be set with sentinel"},
		{"neither", RedisConfig{}, "session.redis.address: is required with session.store: redis (or sentinel)"},
		{"no master", RedisConfig{Sentinel: SentinelConfig{Addresses: []string{"s:26379"}}}, "session.redis.sentinel.master: is required"},
		{"no addresses", RedisConfig{Sentinel: SentinelConfig{Master: "m"}}, "session.redis.sentinel.addresses: is required"},
		{"bad address", RedisConfig{Sentinel: SentinelConfig{Addresses: []string{"s:0"}, Master: "m"}}, `session.redis.sentinel.addresses[0]: "s:0" is not host:port`},
		{"password twice", RedisConfig{Sentinel: SentinelConfig{Addresses: []string{"s:1"}, Master: "m", Password: "x", PasswordFile: "f"}}, "session.redis.sentinel.password_file: set password or password_file, not both"},
		{"sentinel settings without sentinels", RedisConfig{Address: "r:1", Sentinel: SentinelConfig{Password: "x"}}, "session.redis.sentinel.addresses: is required when other sentinel settings are given"},
		{"negative replicas", RedisConfig{Address: "r:1", Wait: WaitConfig{Replicas: &neg}}, "session.redis.wait.replicas: must not be negative"},
		{"wait beyond the read timeout", RedisConfig{Address: "r:1", ReadTimeout: time.Second, Wait: WaitConfig{Replicas: &one, Timeout: time.Second}}, "session.redis.wait.timeout: 1s must be shorter than read_timeout (1s)"},
		{"data TLS named by sentinels in clear", RedisConfig{TLS: RedisTLS{Enabled: true}, Sentinel: SentinelConfig{Addresses: []string{"127.0.0.1:26379", "s:26379"}, Master: "m"}}, "session.redis.tls: with sentinel and without sentinel.tls, the certificate is checked against the host the sentinels name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, e := range c.cfg.Problems(true) {
				got = append(got, e.Error())
			}
			if !strings.Contains(strings.Join(got, "\n"), c.want) {
				t.Errorf("problems %q, want %q", got, c.want)
			}
		})
	}
	ok := RedisConfig{Sentinel: SentinelConfig{Addresses: []string{"127.0.0.1:26379"}, Master: "m"}}
	if p := ok.Problems(true); len(p) != 0 {
		t.Errorf("a valid sentinel configuration: %v", p)
	}
	// Data TLS is pinned by a name, a CA, or sentinels that prove who
	// answers (TLS, or loopback).
	s := SentinelConfig{Addresses: []string{"s:26379"}, Master: "m"}
	caFile, _ := writeCert(t)
	for _, pinned := range []RedisConfig{
		{TLS: RedisTLS{Enabled: true, ServerName: "redis.internal"}, Sentinel: s},
		{TLS: RedisTLS{Enabled: true, CAFile: caFile}, Sentinel: s},
		{TLS: RedisTLS{Enabled: true}, Sentinel: SentinelConfig{Addresses: s.Addresses, Master: "m", TLS: RedisTLS{Enabled: true}}},
		{TLS: RedisTLS{Enabled: true}, Sentinel: SentinelConfig{Addresses: []string{"127.0.0.1:26379", "[::1]:26380"}, Master: "m"}},
	} {
		if p := pinned.Problems(true); len(p) != 0 {
			t.Errorf("data TLS with %+v: %v", pinned, p)
		}
	}
	if n, d := ok.waitFor(); n != 1 || d != DefaultWaitTimeout {
		t.Errorf("wait with sentinel: %d replicas, %v; want 1, %v", n, d, DefaultWaitTimeout)
	}
}

// TestFailoverErrors: which failures make the store ask for the primary
// again and retry once.
func TestFailoverErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{redis.Error("READONLY You can't write against a read only replica."), true},
		{redis.Error("ERR Error running script (call to f_x): @user_script:3: READONLY You can't write against a read only replica."), true},
		{redis.Error("LOADING Redis is loading the dataset in memory"), true},
		{redis.Error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{&netOpError, true},
		{io.EOF, true},
		{fmt.Errorf("127.0.0.1:1 is %w: its ROLE is \"slave\"", errNotPrimary), true},
		{redis.Error("NOPERM this user has no permissions"), false},
		{redis.Error("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{context.DeadlineExceeded, false},
		{redis.ErrPoolExhausted, false},
		{fmt.Errorf("127.0.0.1:1 %w", ErrCluster), false},
	} {
		if got := failoverError(c.err); got != c.want {
			t.Errorf("failoverError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRedisVersionRefused: a server older than Redis 7.0 is refused with
// an error naming it and its version; 7.0 and later (Valkey reports 7.2
// and up), and a reply that hides the version, pass. The real
// redis-server of the other tests (Debian's 7.0) passes the same check at
// every connection.
func TestRedisVersionRefused(t *testing.T) {
	for _, c := range []struct {
		info string
		ok   bool
	}{
		{"# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:0\r\n", false},
		{"# Server\r\nredis_version:5.0.7\r\n", false},
		{"# Server\r\nredis_version:7.0.15\r\n", true},
		{"# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n", true},
		{"# Server\r\nredis_mode:standalone\r\n", true},
	} {
		err := checkVersion(c.info, "127.0.0.1:1")
		if (err == nil) != c.ok {
			t.Errorf("%q: %v, want ok %v", c.info, err, c.ok)
		}
		if err != nil && (!errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "redis_version")) {
			t.Errorf("%q: %v; want ErrVersion naming the server and its version", c.info, err)
		}
		if err != nil && failoverError(err) {
			t.Errorf("%v counts as a failover", err)
		}
	}
	r := redisserver.Start(t)
	if err := testRedisStore(t, r, time.Now).Ping(context.Background()); err != nil {
		t.Fatalf("ping of Debian's redis-server: %v", err)
	}
}
