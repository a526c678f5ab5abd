package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"go.yaml.in/yaml/v4"
)

// RedisConfig configures the Redis session store (session.store: redis),
// which replicas share. docs/sessions.md describes it.
type RedisConfig struct {
	// Address is the server's host:port. Required with session.store: redis.
	Address string `yaml:"address"`
	// Username (Redis 6 ACL user) and Password authenticate the
	// connection; write the password as ${VAR}.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Database is the logical database (SELECT). Default 0.
	Database int `yaml:"database"`
	// TLS connects over TLS: `tls: true` with the system's roots, or the
	// settings in RedisTLS. Default off.
	TLS RedisTLS `yaml:"tls"`
	// DialTimeout bounds connecting (TCP, TLS, AUTH, SELECT). Default 2s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound each command's reply and request.
	// Default 2s each (redigo's own default is none: a hung server would
	// hang requests).
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolMaxIdle is how many idle connections are kept. Default 32 (at
	// most PoolMaxActive): fewer makes a busy replica dial Redis again and
	// again (16 concurrent checks dialled ~2,000 connections a second with 8).
	PoolMaxIdle int `yaml:"pool_max_idle"`
	// PoolMaxActive bounds the open connections. A request that finds
	// them all busy waits, for as long as one command may take at most
	// (dial + write + read timeouts), then fails with 503. Default 64.
	PoolMaxActive int `yaml:"pool_max_active"`
	// KeyPrefix starts every key the broker writes, so that several
	// brokers (or other applications) can share a database. Default
	// "oidc-broker:". Replicas of one broker must use the same one.
	KeyPrefix string `yaml:"key_prefix"`
}

// RedisTLS are the TLS settings of the Redis connection. In YAML it is
// either a boolean (`tls: true`: TLS with the system's roots) or a mapping
// of these settings, which turns TLS on.
type RedisTLS struct {
	// Enabled is true for `tls: true` or a mapping.
	Enabled bool `yaml:"-"`
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system's.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name to verify in the server's certificate, when
	// it differs from the address's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate: anyone on the network
	// path can then read and change every session (tokens included). For
	// tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// UnmarshalYAML accepts a boolean or a mapping (strictly: an unknown key is
// an error).
func (t *RedisTLS) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = RedisTLS{}
		return n.Load(&t.Enabled)
	}
	type redisTLS RedisTLS // without this method
	var p redisTLS
	if err := n.Load(&p, yaml.WithKnownFields()); err != nil {
		return err
	}
	*t = RedisTLS(p)
	t.Enabled = true
	return nil
}

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout       = 2 * time.Second
	DefaultRedisPoolMaxIdle   = 32
	DefaultRedisPoolMaxActive = 64
	DefaultRedisKeyPrefix     = "oidc-broker:"
)

// redisProblems checks the Redis settings; each message starts with its
// field's path.
func (c RedisConfig) problems(used bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("session.redis.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Address == "" && used:
		add("address", "is required with session.store: redis")
	case c.Address != "":
		if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || !validPort(port) {
			add("address", "%q is not host:port", c.Address)
		}
	}
	if c.Database < 0 {
		add("database", "must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v < 0 {
			add(d.name, "must not be negative")
		}
	}
	if c.PoolMaxIdle < 0 {
		add("pool_max_idle", "must not be negative")
	}
	if c.PoolMaxActive < 0 {
		add("pool_max_active", "must not be negative")
	}
	if c.PoolMaxIdle > 0 && c.PoolMaxActive > 0 && c.PoolMaxIdle > c.PoolMaxActive {
		add("pool_max_idle", "%d is more than pool_max_active (%d)", c.PoolMaxIdle, c.PoolMaxActive)
	}
	if c.TLS.CAFile != "" {
		if _, err := loadCAFile(c.TLS.CAFile); err != nil {
			add("tls.ca_file", "%v", err)
		}
	}
	return errs
}

// warnings lists valid Redis settings that expose sessions.
func (c RedisConfig) warnings() []string {
	var w []string
	if c.TLS.InsecureSkipVerify {
		w = append(w, "session.redis.tls.insecure_skip_verify: the Redis server's certificate is not checked: anyone on the network path can read and change sessions")
	}
	if host, _, err := net.SplitHostPort(c.Address); err == nil && !c.TLS.Enabled && !isLoopbackHost(host) {
		w = append(w, "session.redis: the connection to "+c.Address+" is not encrypted: sessions (tokens included) and the password cross the network in clear; set tls")
	}
	return w
}

func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%q holds no PEM certificate", path)
	}
	return pool, nil
}

// redisStore keeps sessions and the broker's backend (index, single-use
// marks, locks) on one Redis server, for every replica.
//
// It is scs's session store with context support (scs.CtxStore), written
// over redigo rather than taken from scs/redisstore, which takes pool
// connections without a context: with a bounded pool a request could wait
// for one forever. Every operation here is bounded: waiting for a
// connection, dialing and the command together take at most opTimeout, and
// the request's context cancels them. The stored data is redisstore's (SET
// prefix+token, PEXPIREAT at the expiry), so the two can read each other's
// sessions. It offers no iteration: redisstore's uses KEYS, which blocks
// Redis; the index serves the lookups the broker needs.
//
// Keys, all under key_prefix: session:<token> (scs's encoded session),
// index:<key> (a sorted set of session tokens scored by their deadline in
// Unix milliseconds; it expires with the last of them), once:<key>, lock:<key>.
//
// Reads of a request's own session may be answered by the token cache
// (sessioncache.go). So every write and deletion of a session publishes the
// token's hash on the channel <key_prefix>invalidate, whether or not this
// replica caches: another one may.
type redisStore struct {
	pool      *redis.Pool
	prefix    string
	opTimeout time.Duration
	now       func() time.Time

	channel string         // of invalidations
	cache   *tokenCache    // nil: session.cache_ttl is 0
	feed    *invalidations // keeps cache subscribed; nil when cache is
	log     *slog.Logger
	pubErrs errorLog // failed publications, logged at most once a minute
}

var (
	_ scs.Store    = (*redisStore)(nil)
	_ scs.CtxStore = (*redisStore)(nil)
	_ backend      = (*redisStore)(nil)
)

// newRedisStore builds the pool from validated settings, with a token cache
// of time to live cacheTTL (0: none). It makes no network call: connections
// are made on first use, the cache's subscription too, so the broker starts
// while Redis is down (and /readyz says so).
func newRedisStore(cfg RedisConfig, cacheTTL time.Duration, now func() time.Time, log *slog.Logger) (*redisStore, error) {
	dial, read, write := orDefault(cfg.DialTimeout, DefaultRedisTimeout), orDefault(cfg.ReadTimeout, DefaultRedisTimeout), orDefault(cfg.WriteTimeout, DefaultRedisTimeout)
	opts := []redis.DialOption{
		redis.DialConnectTimeout(dial), redis.DialReadTimeout(read), redis.DialWriteTimeout(write),
		redis.DialDatabase(cfg.Database), redis.DialUsername(cfg.Username), redis.DialPassword(cfg.Password),
	}
	if cfg.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(cfg.Address)
		}
		if cfg.TLS.CAFile != "" {
			roots, err := loadCAFile(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("broker: session.redis.tls.ca_file: %w", err)
			}
			tc.RootCAs = roots
		}
		opts = append(opts, redis.DialUseTLS(true), redis.DialTLSConfig(tc))
	}
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = DefaultRedisKeyPrefix
	}
	maxIdle, maxActive := cfg.PoolMaxIdle, cfg.PoolMaxActive
	if maxActive == 0 {
		maxActive = max(DefaultRedisPoolMaxActive, maxIdle)
	}
	if maxIdle == 0 {
		maxIdle = min(DefaultRedisPoolMaxIdle, maxActive)
	}
	s := &redisStore{prefix: prefix, opTimeout: dial + write + read, now: now,
		channel: prefix + "invalidate", log: log, pubErrs: errorLog{interval: time.Minute}}
	s.pool = &redis.Pool{
		MaxIdle: maxIdle, MaxActive: maxActive, Wait: true,
		IdleTimeout: 4 * time.Minute, MaxConnLifetime: time.Hour,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", cfg.Address, opts...)
		},
		// A connection idle for a minute may have been closed by the server
		// or a middlebox: check it before use.
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < time.Minute {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
	}
	if cacheTTL > 0 {
		s.cache = newTokenCache(cacheTTL, sessionCacheBytes, time.Now)
		s.feed = newInvalidations(s.cache, s.channel, read, log, func(ctx context.Context) (redis.Conn, net.Conn, error) {
			// The subscription's own connection; stop closes raw to end
			// a receive at once.
			ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			defer cancel()
			var raw net.Conn
			d := net.Dialer{Timeout: dial}
			c, err := redis.DialContext(ctx, "tcp", cfg.Address, append(slices.Clip(opts),
				redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
					nc, err := d.DialContext(ctx, network, addr)
					raw = nc
					return nc, err
				}))...)
			if err != nil {
				return nil, nil, err
			}
			return c, raw, nil
		})
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// close ends the cache's subscription and releases the pool's
// connections.
func (s *redisStore) close() error {
	if s.feed != nil {
		s.feed.stop()
	}
	return s.pool.Close()
}

// errRedis prefixes every failure of the store.
var errRedis = errors.New("broker: redis")

// do runs f on a pooled connection, all within opTimeout.
func (s *redisStore) do(ctx context.Context, f func(ctx context.Context, c redis.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	c, err := s.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errRedis, err)
	}
	defer c.Close()
	if err := f(ctx, c); err != nil {
		return fmt.Errorf("%w: %w", errRedis, err)
	}
	return nil
}

func (s *redisStore) sessionKey(token string) string { return s.prefix + "session:" + token }

// FindCtx returns the session of token; found is false when there is none
// (or it expired). The read that loads a request's own session
// (withCachedRead) may be answered by the token cache, and fills it: with
// the key's remaining life (PTTL, in the same round trip), so that a
// cached session never outlives its key. The bytes must not be modified.
func (s *redisStore) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	var res reservation
	if s.cache != nil && cachedRead(ctx, token) {
		if b, ok := s.cache.find(token); ok {
			return b, true, nil
		}
		s.feed.start()
		res = s.cache.reserve(token)
	}
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		key := s.sessionKey(token)
		if !res.ok {
			var err error
			b, found, err = foundBytes(redis.DoContext(c, ctx, "GET", key))
			return err
		}
		_ = c.Send("GET", key)
		_ = c.Send("PTTL", key)
		replies, err := redis.Values(redis.DoContext(c, ctx, ""))
		if err != nil {
			return err
		}
		if len(replies) != 2 {
			return fmt.Errorf("GET and PTTL: %d replies", len(replies))
		}
		if b, found, err = foundBytes(replies[0], nil); err != nil || !found {
			return err
		}
		if ms, err := redis.Int64(replies[1], nil); err == nil {
			left := time.Duration(ms) * time.Millisecond
			if ms == -1 { // no expiry (not written by scs)
				left = s.cache.ttl
			}
			s.cache.fill(res, b, left)
		}
		return nil
	})
	return b, found, err
}

// foundBytes reads a GET's reply: found is false for nil (no such key).
func foundBytes(reply any, err error) ([]byte, bool, error) {
	b, err := redis.Bytes(reply, err)
	if errors.Is(err, redis.ErrNil) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// CommitCtx writes the session and its expiry in one transaction (a
// session is never stored without its expiry), then publishes the
// invalidation, in the same round trip.
func (s *redisStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	h := hashOf(token)
	defer s.invalidate(h)
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		key := s.sessionKey(token)
		_ = c.Send("MULTI")
		_ = c.Send("SET", key, b)
		_ = c.Send("PEXPIREAT", key, expiry.UnixMilli())
		_ = c.Send("EXEC")
		_ = c.Send("PUBLISH", s.channel, h.String())
		replies, err := redis.Values(redis.DoContext(c, ctx, ""))
		if err != nil {
			return err
		}
		if len(replies) != 5 {
			return fmt.Errorf("MULTI, SET, PEXPIREAT, EXEC, PUBLISH: %d replies", len(replies))
		}
		for _, r := range replies[:3] {
			if e, ok := r.(redis.Error); ok {
				return e
			}
		}
		if err := execError(redis.Values(replies[3], nil)); err != nil {
			return err
		}
		s.published(replies[4])
		return nil
	})
}

// DeleteCtx removes the session of token and publishes the invalidation,
// in one round trip.
func (s *redisStore) DeleteCtx(ctx context.Context, token string) error {
	h := hashOf(token)
	defer s.invalidate(h)
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_ = c.Send("DEL", s.sessionKey(token))
		_ = c.Send("PUBLISH", s.channel, h.String())
		replies, err := redis.Values(redis.DoContext(c, ctx, ""))
		if err != nil {
			return err
		}
		if len(replies) != 2 {
			return fmt.Errorf("DEL, PUBLISH: %d replies", len(replies))
		}
		if e, ok := replies[0].(redis.Error); ok {
			return e
		}
		s.published(replies[1])
		return nil
	})
}

// invalidate drops the local cache's entry of a session this replica just
// wrote or deleted (or failed to: its state is unknown), and spoils the
// reads in flight that would cache it.
func (s *redisStore) invalidate(h tokenHash) {
	if s.cache != nil {
		s.cache.invalidate(h)
	}
}

// published checks PUBLISH's reply. A failure does not fail the write, which
// is done: the other replicas' caches then keep the old session for at most
// session.cache_ttl. It is logged (once a minute at most) where this
// replica caches too, as replicas of one broker should all do; where the
// cache is off, Redis may well refuse channels (an ACL without them).
func (s *redisStore) published(reply any) {
	e, ok := reply.(redis.Error)
	if !ok || s.cache == nil {
		return
	}
	if ok, skipped := s.pubErrs.allow(time.Now()); ok {
		s.log.Error("session cache: invalidation not published: other replicas may use the old session until session.cache_ttl ends",
			"error", e, "similar_errors_not_logged", skipped)
	}
}

// Find, Commit and Delete are scs.Store's methods without a context (for
// callers that use the store directly); they are bounded all the same.
func (s *redisStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *redisStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *redisStore) Delete(token string) error { return s.DeleteCtx(context.Background(), token) }

// execError reports an aborted transaction or a failed command in it.
func execError(replies []any, err error) error {
	if err != nil {
		return err
	}
	for _, r := range replies {
		if e, ok := r.(redis.Error); ok {
			return e
		}
	}
	return nil
}

// indexAddScript adds ARGV[1] to each sorted set in KEYS with score ARGV[2]
// (its deadline, Unix ms), drops the members that expired by ARGV[3] (now),
// and lets the set expire with its latest member: the expiry only grows
// while sessions are added, and the set goes away by itself.
var indexAddScript = redis.NewScript(-1, `
for _, k in ipairs(KEYS) do
  redis.call('ZADD', k, ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[3])
  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', k, last[2]) end
end
return 1
`)

// unlockScript deletes KEYS[1] only while it still holds this holder's
// value ARGV[1]: a lock that expired and was taken by someone else stays
// theirs.
var unlockScript = redis.NewScript(1, `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func (s *redisStore) indexKey(key string) string { return s.prefix + "index:" + key }

func (s *redisStore) indexAdd(ctx context.Context, keys []string, token string, until time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(keys)+3)
	args = append(args, len(keys))
	for _, k := range keys {
		args = append(args, s.indexKey(k))
	}
	args = append(args, token, until.UnixMilli(), s.now().UnixMilli())
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_, err := indexAddScript.DoContext(ctx, c, args...)
		return err
	})
}

func (s *redisStore) indexTokens(ctx context.Context, key string) (tokens []string, err error) {
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		// Members whose deadline is still ahead ("(" excludes now itself).
		tokens, err = redis.Strings(redis.DoContext(c, ctx, "ZRANGEBYSCORE", s.indexKey(key),
			"("+strconv.FormatInt(s.now().UnixMilli(), 10), "+inf"))
		return err
	})
	return tokens, err
}

func (s *redisStore) indexRemove(ctx context.Context, key string) error {
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_, err := redis.DoContext(c, ctx, "DEL", s.indexKey(key))
		return err
	})
}

func (s *redisStore) once(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error) {
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		fresh, err = setNX(ctx, c, s.prefix+"once:"+key, "1", ttl)
		return err
	})
	return fresh, err
}

func (s *redisStore) lock(ctx context.Context, key string, ttl time.Duration) (func(), bool, error) {
	k, holder := s.prefix+"lock:"+key, randomToken()
	var ok bool
	err := s.do(ctx, func(ctx context.Context, c redis.Conn) (err error) {
		ok, err = setNX(ctx, c, k, holder, ttl)
		return err
	})
	if err != nil || !ok {
		return nil, false, err
	}
	release := func() {
		// Also after the request ended; if this fails the lock expires.
		_ = s.do(context.WithoutCancel(ctx), func(ctx context.Context, c redis.Conn) error {
			_, err := unlockScript.DoContext(ctx, c, k, holder)
			return err
		})
	}
	return release, true, nil
}

// setNX sets key to value for ttl unless it exists, and reports whether it
// did.
func setNX(ctx context.Context, c redis.Conn, key, value string, ttl time.Duration) (bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	_, err := redis.String(redis.DoContext(c, ctx, "SET", key, value, "NX", "PX", ms))
	switch {
	case errors.Is(err, redis.ErrNil):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

func (s *redisStore) ping(ctx context.Context) error {
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_, err := redis.DoContext(c, ctx, "PING")
		return err
	})
}
