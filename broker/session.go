package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The Redis settings (package store).
type (
	// RedisConfig configures the Redis session store (store.RedisConfig).
	RedisConfig = store.RedisConfig
	// RedisTLS configures TLS to Redis (store.RedisTLS).
	RedisTLS = store.RedisTLS
	// SentinelConfig finds the Redis primary through Sentinel
	// (store.SentinelConfig).
	SentinelConfig = store.SentinelConfig
	// WaitConfig makes writes wait for Redis replicas (store.WaitConfig).
	WaitConfig = store.WaitConfig
)

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout       = store.DefaultRedisTimeout
	DefaultRedisPoolMaxIdle   = store.DefaultRedisPoolMaxIdle
	DefaultRedisPoolMaxActive = store.DefaultRedisPoolMaxActive
	DefaultRedisKeyPrefix     = store.DefaultRedisKeyPrefix
)

// DefaultCacheTTL is session.cache_ttl's default. Revocations reach every
// replica through Redis within milliseconds; the time to live only bounds
// how long a replica that missed one keeps using the session. Misses
// happen while a broken subscription goes unnoticed: at most a ping
// interval and a read timeout, 3 s by default, which five seconds covers.
// It is also long enough for a page's burst of forward-auth checks to
// share one Redis read.
const DefaultCacheTTL = 5 * time.Second

// cacheTTL is session.cache_ttl: DefaultCacheTTL when unset, 0 when off.
func (c SessionConfig) cacheTTL() time.Duration {
	if c.CacheTTL == nil {
		return DefaultCacheTTL
	}
	return *c.CacheTTL
}

// problems checks the session settings; each message starts with its
// field's path.
func (c SessionConfig) problems() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("session.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.Store {
	case "", "memory", "redis":
	default:
		add("store", "%q is not a known store (memory, redis)", c.Store)
	}
	if c.CookieName != "" && !validCookieName(c.CookieName) {
		add("cookie_name", "%q must be letters, digits, '-' or '_'", c.CookieName)
	}
	if c.Lifetime < 0 {
		add("lifetime", "must not be negative")
	}
	if c.IdleTimeout < 0 {
		add("idle_timeout", "must not be negative")
	}
	if c.PersistentMax < 0 {
		add("persistent_max", "must not be negative")
	}
	if c.CacheTTL != nil && *c.CacheTTL < 0 {
		add("cache_ttl", "must not be negative (0 turns the cache off)")
	}
	return append(errs, c.Redis.Problems(c.Store == "redis")...)
}

// warnings lists valid session settings that are probably not what was
// meant.
func (c SessionConfig) warnings() []string {
	var w []string
	if c.Store == "redis" {
		w = append(w, c.Redis.Warnings()...)
	} else if c.Redis.Set() {
		w = append(w, "session.redis: is set but session.store is not redis: it is ignored")
	}
	lifetime := c.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	if c.PersistentMax > 0 && c.PersistentMax < lifetime {
		w = append(w, fmt.Sprintf("session.persistent_max: %v is shorter than session.lifetime (%v): \"Keep me signed in\" would end sessions sooner", c.PersistentMax, lifetime))
	}
	return w
}

// varyCookie adds "Vary: Cookie" to h, which every answer that depends on
// the session carries. It runs on every request: the canonical name is set
// directly, to a shared value of capacity 1, which an Add copies before it
// appends (the server only reads header values).
func varyCookie(h http.Header) {
	if v, ok := h["Vary"]; ok {
		h["Vary"] = append(v, "Cookie")
		return
	}
	h["Vary"] = varyCookieValue[:1:1]
}

var varyCookieValue = []string{"Cookie"}

// noStoreValue is "Cache-Control: no-store" for forward-auth's answers,
// shared like varyCookieValue.
var noStoreValue = []string{"no-store"}

// errSessionStore wraps store failures; the broker answers 503.
var errSessionStore = session.ErrStore

// newSessions makes the sessions of cfg over the store st (session.New),
// with the broker's defaults; derive makes what forward-auth needs of a
// decoded identity (relayHeadersOf).
func newSessions(cfg SessionConfig, st scs.Store, derive func(providers.Identity) any) *session.Manager {
	lifetime := cfg.Lifetime
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	name := cfg.CookieName
	if name == "" {
		name = DefaultCookieName
	}
	rs, _ := st.(*store.Redis)
	return session.New(session.Config{CookieName: name, CookieDomain: cfg.CookieDomain, Lifetime: lifetime,
		IdleTimeout: cfg.IdleTimeout, PersistentMax: cfg.PersistentMax, CachedReads: rs != nil && rs.Caches()}, st, derive)
}

// needsSession reports whether the route for path (prefix removed) cannot
// be served without the request's session, so that it answers 503 while the
// store is down: everything under /oauth2/ (logins, sign-out, userinfo, and
// endpoints yet to come) except the sign-in page, its assets and the JWKS,
// which need no session, and forward-auth, which the access rules decide as
// they decide the app's routes (requestIdentity).
func needsSession(path string) bool {
	rest, ok := strings.CutPrefix(path, "/oauth2/")
	if !ok {
		return false
	}
	return rest != "sign_in" && rest != "jwks" && rest != "auth" && !strings.HasPrefix(rest, "static/")
}

// logStoreError logs a failure of the session store, throttled (the first
// of each kind of failure and message in 10 seconds), with the request ID
// of ctx when it is a request's.
func (s *Server) logStoreError(ctx context.Context, msg string, err error) {
	if ok, skipped := s.storeErrs.AllowKind(time.Now(), msg+": "+store.ErrorKind(err)); ok {
		s.log.ErrorContext(ctx, msg, "error", err, "similar_errors_not_logged", skipped)
	}
}

// openStore builds the configured session store: scs's Store for the
// session data, the broker's store.Backend next to it, and a function that
// releases them. It makes no network call.
func openStore(cfg SessionConfig, now func() time.Time, logger *slog.Logger) (scs.Store, store.Backend, func() error, error) {
	if cfg.Store == "redis" {
		r, err := store.NewRedis(cfg.Redis, cfg.cacheTTL(), now, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		return r, r, r.Close, nil
	}
	return store.NewMemorySessions(), store.NewMemoryBackend(now), func() error { return nil }, nil
}

// ErrRedisCluster: session.redis names a Redis Cluster node, which the
// store refuses (docs/sessions.md#redis-cluster).
var ErrRedisCluster = store.ErrCluster

// ErrRedisVersion: session.redis names a server older than Redis 7.0,
// whose commands the store needs.
var ErrRedisVersion = store.ErrVersion

// ProbeStore asks the session store once whether it answers: the binary
// refuses to start on a Redis Cluster node (ErrRedisCluster) or a server
// older than Redis 7.0 (ErrRedisVersion), and only
// logs any other failure (the broker starts while Redis is down).
func (s *Server) ProbeStore(ctx context.Context) error { return s.store.Ping(ctx) }

// Index keys. The provider is part of every key: identity is (provider, sub).
func sidKey(provider, sid string) string { return "sid:" + provider + ":" + sid }
func subKey(provider, sub string) string { return "sub:" + provider + ":" + sub }
