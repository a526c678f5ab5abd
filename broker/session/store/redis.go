package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
)

// Redis keeps sessions and the broker's backend (index, single-use
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
type Redis struct {
	pool      *redis.Pool
	primary   *primary // finds the server the pool dials, and follows it
	prefix    string
	opTimeout time.Duration
	now       func() time.Time

	channel string         // of invalidations
	cache   *tokenCache    // nil: session.cache_ttl is 0
	feed    *invalidations // keeps cache subscribed; nil when cache is
	log     *slog.Logger
	pubErrs ErrorLog // failed publications, logged at most once a minute

	// waitN replicas must confirm the writes that must survive a
	// failover, within waitTimeout (0: none); journal keeps the
	// revocations they did not (journal.go).
	waitN       int
	waitTimeout time.Duration
	waitErrs    ErrorLog
	shortUntil  atomic.Int64 // Unix ns: writes do not wait until then (degradedFor)
	journal     *journal
	ctx         context.Context // canceled by Close
	cancel      context.CancelFunc
	rewriteDone chan struct{}
}

var (
	_ scs.Store    = (*Redis)(nil)
	_ scs.CtxStore = (*Redis)(nil)
	_ Backend      = (*Redis)(nil)
)

// NewRedis builds the pool from validated settings, with a token cache
// of time to live cacheTTL (0: none). It makes no network call: connections
// are made on first use, the cache's subscription too, so the broker starts
// while Redis is down (and /readyz says so).
func NewRedis(cfg RedisConfig, cacheTTL time.Duration, now func() time.Time, log *slog.Logger) (*Redis, error) {
	dial, read, write := orDefault(cfg.DialTimeout, DefaultRedisTimeout), orDefault(cfg.ReadTimeout, DefaultRedisTimeout), orDefault(cfg.WriteTimeout, DefaultRedisTimeout)
	opts := []redis.DialOption{
		redis.DialConnectTimeout(dial), redis.DialReadTimeout(read), redis.DialWriteTimeout(write),
		redis.DialDatabase(cfg.Database), redis.DialUsername(cfg.Username), redis.DialPassword(cfg.Password),
	}
	if cfg.TLS.Enabled {
		host, _, _ := net.SplitHostPort(cfg.Address) // "" with sentinels: each primary's host
		tc, err := tlsConfig(cfg.TLS, host)
		if err != nil {
			return nil, fmt.Errorf("store: session.redis.tls.ca_file: %w", err)
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
	p, err := newPrimary(cfg, opts, [3]time.Duration{dial, read, write}, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Redis{primary: p, prefix: prefix, opTimeout: dial + write + read, now: now,
		channel: prefix + "invalidate", log: log, pubErrs: ErrorLog{Interval: time.Minute},
		waitErrs: ErrorLog{Interval: time.Minute}, journal: newJournal(), ctx: ctx, cancel: cancel, rewriteDone: make(chan struct{})}
	s.waitN, s.waitTimeout = cfg.waitFor()
	s.pool = &redis.Pool{
		MaxIdle: maxIdle, MaxActive: maxActive, Wait: true,
		IdleTimeout: 4 * time.Minute, MaxConnLifetime: time.Hour,
		DialContext: p.dial,
		// A connection dialed before the last failover (or a failure that
		// may have been one) is dropped, and so is one the server closed
		// (a restart: closedByServer) when the command must not run twice
		// (doUnsent; others run again on a fresh connection); one idle for
		// a minute may have been closed by a middlebox: check it before
		// use.
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
			if p.stale(c) {
				return errStale
			}
			if b, _ := ctx.Value(borrowedKey{}).(*borrowed); b != nil && b.once {
				if pc, ok := c.(*conn); ok && pc.sent != nil && pc.sent.closedByServer() {
					return errClosedByServer
				}
			}
			if time.Since(idleSince) >= time.Minute {
				if _, err := redis.DoContext(c, ctx, "PING"); err != nil {
					return err
				}
			}
			lend(ctx, c)
			return nil
		},
	}
	if cacheTTL > 0 {
		s.cache = newTokenCache(cacheTTL, CacheBytes, time.Now)
		s.feed = newInvalidations(s.cache, s.channel, read, log, func(ctx context.Context) (redis.Conn, net.Conn, error) {
			// The subscription's own connection, to the primary; stop
			// closes raw to end a receive at once.
			ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			defer cancel()
			var raw net.Conn
			d := net.Dialer{Timeout: dial}
			c, err := p.dialPrimary(ctx, redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := d.DialContext(ctx, network, addr)
				raw = nc
				return nc, err
			}))
			if err != nil {
				return nil, nil, err
			}
			return c, raw, nil
		})
	}
	// After a failover the cache starts empty on a new subscription
	// (invalidations published on the old primary may be lost), and the
	// journal is written to the new primary.
	p.onSwitch = func() {
		if s.feed != nil {
			s.feed.restart()
		}
		s.replayNow()
	}
	return s, nil
}

// errStale: the pool drops a connection of an earlier generation.
var errStale = errors.New("store: redis: connection from before a failover")

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// close ends the cache's subscription and releases the pool's
// connections.
func (s *Redis) Close() error {
	s.cancel()
	s.journal.start.Do(func() { close(s.rewriteDone) }) // never started
	<-s.rewriteDone
	if s.feed != nil {
		s.feed.stop()
	}
	s.primary.close()
	return s.pool.Close()
}

// Caches reports whether the store has a token cache (session.cache_ttl is
// not 0): reads marked WithCachedRead may then be answered from it.
func (s *Redis) Caches() bool { return s.cache != nil }

// Invalidations makes notify hear of every session invalidated on any
// replica (by the hash of its token), and returns the function that starts
// the subscription; nil when the store does not cache (no subscription).
// Call it before the subscription starts (before the first request).
func (s *Redis) Invalidations(notify func(TokenHash)) (start func()) {
	if s.feed == nil {
		return nil
	}
	s.feed.notify = notify
	return s.feed.start
}

// errRedis prefixes every failure of the store.
var errRedis = errors.New("store: redis")

func (s *Redis) sessionKey(token string) string { return s.prefix + "session:" + token }

// FindCtx returns the session of token; found is false when there is none
// (or it expired). The read that loads a request's own session
// (WithCachedRead) may be answered by the token cache, and fills it: with
// the key's remaining life (PTTL, in the same round trip), so that a
// cached session never outlives its key. The bytes must not be modified.
func (s *Redis) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	if s.journal.deleted(token) { // ended, not yet confirmed by replicas
		return nil, false, nil
	}
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

// FindCached answers the read of token that FindCtx would answer from the
// token cache (a context of WithCachedRead), without a context or the
// store's metrics: the cached bytes, or found false for a session ended on
// this replica and not yet confirmed by replicas. ok is false when the
// cache cannot answer (no cache, not cached, expired): FindCtx reads from
// Redis then, and fills the cache. The bytes must not be modified.
func (s *Redis) FindCached(token string) (b []byte, found, ok bool) {
	if s.journal.deleted(token) {
		return nil, false, true
	}
	if s.cache == nil {
		return nil, false, false
	}
	b, ok = s.cache.find(token)
	return b, ok, ok
}

// foundBytes reads a GET's reply: found is false for nil (no such key).
func foundBytes(reply any, err error) ([]byte, bool, error) {
	b, err := redis.Bytes(reply, err)
	if errors.Is(err, redis.ErrNil) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// CommitCtx writes the session with its expiry in one command (SET ...
// PXAT, Redis 6.2 and later: a session is never stored without its
// expiry), then publishes the invalidation, in the same round trip. The
// key, value and expiry are what redisstore's MULTI, SET, PEXPIREAT, EXEC
// leaves (TestRedisStoreMatchesRedisstore), in one command instead of four.
// It is not sent twice (doUnsent): a sign-out on another replica between
// the two would be undone.
func (s *Redis) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	h := HashOf(token)
	defer s.invalidate(h)
	return s.doUnsent(ctx, func(ctx context.Context, c redis.Conn) error {
		_ = c.Send("SET", s.sessionKey(token), b, "PXAT", expiry.UnixMilli())
		_ = c.Send("PUBLISH", s.channel, h.String())
		w := s.sendWait(c)
		replies, err := redis.Values(redis.DoContext(c, ctx, ""))
		if err != nil {
			return err
		}
		if len(replies) != 2+w {
			return fmt.Errorf("SET, PUBLISH, WAIT: %d replies", len(replies))
		}
		if e, ok := replies[0].(redis.Error); ok {
			return versionHint(e)
		}
		s.published(replies[1])
		if w > 0 {
			s.confirmed(replies[2], nil) // a session lost in a failover signs its user in again: logged only
		}
		return nil
	})
}

var _ GuardedCommitter = (*Redis)(nil)

// CommitUnlessIndexedCtx is CommitCtx, done only while the index key lists
// no token whose until is still ahead (a revocation mark), in one script:
// the check, add's index entries (IndexAdd's), the write (SET ... PXAT)
// and the invalidation, with WAIT in the same round trip. It replaces the
// revocation guard's IndexTokens and CommitCtx, one round trip apart, by
// one, and a revocation can no longer land between the check and the
// write; a login's IndexAdd, one more round trip before, is in it too. The
// journal's entries under key (revocations not yet confirmed by replicas)
// count too. A fresh token's write publishes nothing (Addition.Fresh).
func (s *Redis) CommitUnlessIndexedCtx(ctx context.Context, token string, b []byte, expiry time.Time, key string, add Addition) (written bool, err error) {
	now := s.now()
	if len(s.journal.indexed(key, nil, now)) > 0 {
		return false, nil
	}
	h := HashOf(token)
	defer s.invalidate(h)
	channel, nowMs := s.channel, strconv.FormatInt(now.UnixMilli(), 10)
	if add.Fresh {
		channel = "" // the script publishes nothing
	}
	once, mark := 0, "" // mark: the single-use key's value, random as Once's
	if add.Once != "" {
		once, mark = 1, randomToken()
	}
	args := make([]any, 0, 4+len(add.Keys)+11)
	args = append(args, 2+once+len(add.Keys), s.sessionKey(token), s.indexKey(key))
	if once == 1 {
		args = append(args, s.prefix+"once:"+add.Once) // Once's key
	}
	for _, k := range add.Keys {
		args = append(args, s.indexKey(k))
	}
	args = append(args, b, expiry.UnixMilli(), "("+nowMs, channel, h.String(), token, add.Until.UnixMilli(), nowMs,
		once, max(add.OnceTTL.Milliseconds(), 1), mark)
	confirmed := s.waitN == 0 || len(add.Keys) == 0
	err = s.doUnsent(ctx, func(ctx context.Context, c redis.Conn) error {
		reply, w, err := s.guardedCommit(ctx, c, args, true)
		if isNoScript(err) { // not loaded on this server yet: nothing ran
			reply, w, err = s.guardedCommit(ctx, c, args, false)
		}
		if err != nil {
			return versionHint(err)
		}
		if len(reply) < 1+w {
			return fmt.Errorf("guarded commit, WAIT: %d replies", len(reply))
		}
		r, err := redis.Values(reply[0], nil)
		if err != nil {
			return err
		}
		outcome, err := redis.Int(r[0], nil)
		if err != nil || outcome != 1 {
			confirmed = err == nil || confirmed // refused: nothing indexed
			if err == nil && outcome == 2 {
				err = ErrOnceUsed
			}
			return err
		}
		written = true
		if len(r) > 1 {
			s.published(r[1])
		}
		if w > 0 {
			// As CommitCtx, a session lost in a failover is logged only;
			// its index entries are what a back-channel logout must find.
			confirmed = s.confirmed(reply[1], nil) || confirmed
		}
		return nil
	})
	if !confirmed {
		s.keep(func(j *journal) { j.addIndex(add.Keys, token, add.Until) })
	}
	return written, err
}

// guardedCommit sends guardedCommitScript (by its hash, or whole) and
// WAIT, and returns their replies; w is 1 when WAIT was sent.
func (s *Redis) guardedCommit(ctx context.Context, c redis.Conn, args []any, byHash bool) ([]any, int, error) {
	send := guardedCommitScript.Send
	if byHash {
		send = guardedCommitScript.SendHash
	}
	_ = send(c, args...)
	w := s.sendWait(c)
	replies, err := redis.Values(redis.DoContext(c, ctx, ""))
	if err == nil && len(replies) > 0 {
		if e, ok := replies[0].(redis.Error); ok {
			return nil, w, e
		}
	}
	return replies, w, err
}

func isNoScript(err error) bool {
	e, ok := err.(redis.Error)
	return ok && strings.HasPrefix(string(e), "NOSCRIPT ")
}

// guardedCommitScript writes the session KEYS[1] (ARGV[1], expiring at
// ARGV[2] Unix ms) unless the sorted set KEYS[2] has a member scored above
// ARGV[3] ("(now"); it returns {0} then. When ARGV[9] is 1, KEYS[3] is a
// single-use mark (Once's key): it is set to ARGV[11] for ARGV[10] ms
// unless it exists, and the script returns {2} when it does. Else it first
// adds ARGV[6] to each sorted set of the remaining KEYS as indexAddScript
// does (score ARGV[7], now ARGV[8]), and after the write publishes ARGV[5]
// on ARGV[4] unless ARGV[4] is empty: it returns {1, PUBLISH's reply or
// error}, or {1}.
var guardedCommitScript = redis.NewScript(-1, `
if redis.call('ZCOUNT', KEYS[2], ARGV[3], '+inf') > 0 then return {0} end
local first = 3
if ARGV[9] == '1' then
  if not redis.call('SET', KEYS[3], ARGV[11], 'NX', 'PX', ARGV[10]) then return {2} end
  first = 4
end
for i = first, #KEYS do
  local k = KEYS[i]
  redis.call('ZADD', k, ARGV[7], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', ARGV[8])
  local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', k, last[2]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
if ARGV[4] == '' then return {1} end
return {1, redis.pcall('PUBLISH', ARGV[4], ARGV[5])}
`)

// DeleteCtx removes the session of token and publishes the invalidation,
// in one round trip.
//
// With wait.replicas it is a revocation that must survive a failover: when
// the replicas do not confirm it, or it fails, the journal keeps it and
// writes it again until they do (a failure is returned all the same).
func (s *Redis) DeleteCtx(ctx context.Context, token string) error {
	h := HashOf(token)
	defer s.invalidate(h)
	confirmed := s.waitN == 0
	err := s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_ = c.Send("DEL", s.sessionKey(token))
		_ = c.Send("PUBLISH", s.channel, h.String())
		w := s.sendWait(c)
		replies, err := redis.Values(redis.DoContext(c, ctx, ""))
		if err != nil {
			return err
		}
		if len(replies) != 2+w {
			return fmt.Errorf("DEL, PUBLISH, WAIT: %d replies", len(replies))
		}
		if e, ok := replies[0].(redis.Error); ok {
			return e
		}
		s.published(replies[1])
		confirmed = confirmed || (w > 0 && s.confirmed(replies[2], nil))
		return nil
	})
	if !confirmed {
		s.keep(func(j *journal) { j.addDel(token) })
	}
	return err
}

// invalidate drops the local cache's entry of a session this replica just
// wrote or deleted (or failed to: its state is unknown), and spoils the
// reads in flight that would cache it.
func (s *Redis) invalidate(h TokenHash) {
	if s.cache != nil {
		s.cache.invalidate(h)
	}
}

// published checks PUBLISH's reply. A failure does not fail the write, which
// is done: the other replicas' caches then keep the old session for at most
// session.cache_ttl. It is logged (once a minute at most) where this
// replica caches too, as replicas of one broker should all do; where the
// cache is off, Redis may well refuse channels (an ACL without them).
func (s *Redis) published(reply any) {
	e, ok := reply.(redis.Error)
	if !ok || s.cache == nil {
		return
	}
	if ok, skipped := s.pubErrs.Allow(time.Now()); ok {
		s.log.Error("session cache: invalidation not published: other replicas may use the old session until session.cache_ttl ends",
			"error", e, "similar_errors_not_logged", skipped)
	}
}

// Find, Commit and Delete are scs.Store's methods without a context (for
// callers that use the store directly); they are bounded all the same.
func (s *Redis) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

func (s *Redis) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

func (s *Redis) Delete(token string) error { return s.DeleteCtx(context.Background(), token) }

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

func (s *Redis) indexKey(key string) string { return s.prefix + "index:" + key }

func (s *Redis) IndexAdd(ctx context.Context, keys []string, token string, until time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(keys)+3)
	args = append(args, len(keys))
	for _, k := range keys {
		args = append(args, s.indexKey(k))
	}
	args = append(args, token, until.UnixMilli(), s.now().UnixMilli())
	confirmed := s.waitN == 0
	err := s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		if _, err := indexAddScript.DoContext(ctx, c, args...); err != nil {
			return err
		}
		confirmed = confirmed || s.wait(ctx, c)
		return nil
	})
	if !confirmed { // a revocation mark, or what a back-channel logout must find
		s.keep(func(j *journal) { j.addIndex(keys, token, until) })
	}
	return err
}

func (s *Redis) IndexTokens(ctx context.Context, key string) (tokens []string, err error) {
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		// Members whose deadline is still ahead ("(" excludes now itself).
		tokens, err = redis.Strings(redis.DoContext(c, ctx, "ZRANGEBYSCORE", s.indexKey(key),
			"("+strconv.FormatInt(s.now().UnixMilli(), 10), "+inf"))
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.journal.indexed(key, tokens, s.now()), nil
}

func (s *Redis) IndexRemove(ctx context.Context, key string) error {
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_, err := redis.DoContext(c, ctx, "DEL", s.indexKey(key))
		return err
	})
}

// Once marks key used unless it was, and reports whether this call made
// the mark. The mark holds a value of this call's own: when the first try's
// reply was lost and do runs it again, a mark holding that value is this
// call's, not a replay (setOnce). When Once fails, it takes its mark
// back if it can, so that the caller's own retry (an IdP sending a logout
// token again after a 503) is not refused as a replay.
func (s *Redis) Once(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error) {
	k, mine := s.prefix+"once:"+key, randomToken()
	ms := max(ttl.Milliseconds(), 1)
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		var err error
		fresh, err = setOnce(ctx, c, k, mine, ms)
		if err == nil && fresh {
			s.wait(ctx, c) // a lost mark is a state the IdP still refuses to redeem twice: logged only
		}
		return err
	})
	if err != nil {
		// Also after the request ended; if this fails too, the mark
		// stays until ttl (the IdP's retry is then refused as a replay).
		_ = s.do(context.WithoutCancel(ctx), func(ctx context.Context, c redis.Conn) error {
			_, err := unlockScript.DoContext(ctx, c, k, mine)
			return err
		})
		return false, err
	}
	return fresh, nil
}

// setOnce sets k to v for ms milliseconds unless it exists (SET NX GET
// PX, one command, no script: Redis 7.0 and later), and reports true when
// it did or when k already holds v (this caller's own earlier try, whose
// reply was lost), false otherwise.
func setOnce(ctx context.Context, c redis.Conn, k, v string, ms int64) (bool, error) {
	old, err := redis.String(redis.DoContext(c, ctx, "SET", k, v, "NX", "GET", "PX", ms))
	if errors.Is(err, redis.ErrNil) {
		return true, nil // it did not exist: set
	}
	return err == nil && old == v, versionHint(err)
}

// versionHint adds to a syntax error what the broker needs of Redis: a
// server older than 7.0 refuses SET with NX and GET (6.2 and older), or
// with PXAT (before 6.2), as a syntax error.
func versionHint(err error) error {
	var e redis.Error
	if errors.As(err, &e) && strings.Contains(string(e), "syntax error") {
		return fmt.Errorf("%w (the session store needs Redis 7.0 or later: SET with PXAT, with NX and GET)", err)
	}
	return err
}

func (s *Redis) Lock(ctx context.Context, key string, ttl time.Duration) (func(), bool, error) {
	k, holder := s.prefix+"lock:"+key, randomToken()
	var ok bool
	ms := max(ttl.Milliseconds(), 1)
	err := s.do(ctx, func(ctx context.Context, c redis.Conn) (err error) {
		// A lock holding this holder's value is this call's own first try.
		ok, err = setOnce(ctx, c, k, holder, ms)
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

// secret makes the secret name unless another replica did (SET NX), then
// reads the one that won. It has no time to live: it is one key of fixed
// size, made once per store whatever the traffic.
func (s *Redis) Secret(ctx context.Context, name string) (b []byte, err error) {
	key := s.prefix + "secret:" + name
	err = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		made, err := redis.String(redis.DoContext(c, ctx, "SET", key, randomBytes(32), "NX"))
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return err
		}
		if made == "OK" {
			s.wait(ctx, c)
		}
		b, err = redis.Bytes(redis.DoContext(c, ctx, "GET", key))
		return err
	})
	if err == nil && len(b) != 32 {
		err = fmt.Errorf("%w: %s holds %d bytes, not a 32-byte secret", errRedis, key, len(b))
	}
	return b, err
}

func (s *Redis) Ping(ctx context.Context) error {
	return s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		_, err := redis.DoContext(c, ctx, "PING")
		return err
	})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("store: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return b
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }
