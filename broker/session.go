package broker

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Session keys. Values read from a session are shared with other requests
// (sessioncache.go): change one by putting a new value, never in place.
const (
	keyIdentity = "identity"
	keyCSRF     = "csrf"
	keyRemember = "remember" // true: a persistent cookie ("Keep me signed in")
)

// sessions wraps scs: scs keeps the data server-side (Load, Commit,
// RenewToken, Destroy) and this type owns the cookie, because its name,
// path and Secure flag depend on each request's external origin (https or
// not, path prefix), which one scs.SessionManager cannot vary.
//
// The same code serves every store (memory or Redis): the store is scs's
// Store plus the broker's store.Backend (store.go).
type sessions struct {
	sm       *scs.SessionManager
	baseName string
	// hostName and secureName are baseName with the __Host- and
	// __Secure- prefixes.
	hostName, secureName string
	domain               string
	// persistentMax is session.persistent_max: 0 offers no persistent
	// cookies.
	persistentMax time.Duration
	// cachedReads: the store has a token cache, which load may use
	// (withCachedRead).
	cachedReads bool
}

// The Redis settings (package store).
type (
	// RedisConfig configures the Redis session store (store.RedisConfig).
	RedisConfig = store.RedisConfig
	// RedisTLS configures TLS to Redis (store.RedisTLS).
	RedisTLS = store.RedisTLS
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

// newSessions makes the sessions of cfg over the store st. derive, when
// set, makes what forward-auth needs of a decoded identity beyond the
// identity itself (sessionView.derived), once per decoding.
func newSessions(cfg SessionConfig, st scs.Store, derive func(providers.Identity) any) *sessions {
	sm := scs.New()
	sm.Store = st
	sm.Codec = &sessionCodec{cache: newDecodeCache(store.CacheBytes), derive: derive}
	sm.Lifetime = cfg.Lifetime
	if sm.Lifetime == 0 {
		sm.Lifetime = DefaultLifetime
	}
	sm.IdleTimeout = cfg.IdleTimeout
	name := cfg.CookieName
	if name == "" {
		name = DefaultCookieName
	}
	rs, _ := st.(*store.Redis)
	return &sessions{sm: sm, baseName: name, hostName: "__Host-" + name, secureName: "__Secure-" + name,
		domain: cfg.CookieDomain, persistentMax: cfg.PersistentMax,
		cachedReads: rs != nil && rs.Caches() && cfg.IdleTimeout == 0}
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
	} else if c.Redis != (RedisConfig{}) {
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

// cookie returns the session cookie's attributes for an origin: HttpOnly,
// SameSite=Lax, Secure behind https, and the strongest name prefix the
// browser will accept (__Host- needs Path=/ and no Domain).
func (s *sessions) cookie(o origin) http.Cookie {
	c := http.Cookie{Name: s.cookieName(o), Path: "/", Domain: s.domain, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: o.Secure()}
	if o.Prefix != "" {
		c.Path = o.Prefix + "/"
	}
	return c
}

// cookieName is cookie(o).Name, without making the rest (every request
// reads the cookie).
func (s *sessions) cookieName(o origin) string {
	switch secure := o.Secure(); {
	case secure && s.domain == "" && o.Prefix == "": // Path "/": __Host-
		return s.hostName
	case secure:
		return s.secureName
	}
	return s.baseName
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
var errSessionStore = errors.New("broker: session store unavailable")

// storeDownKey marks, in a request's context, a session that could not be
// read: the request goes on with an empty session, which must never be
// written (it would overwrite or shadow the real one).
type storeDownKey struct{}

// load puts the session of token (the request's cookie) into ctx; path is
// the request's, external prefix removed. It always returns a usable
// context. When the store fails, that context carries an empty session
// marked unavailable (see available), and the error says why. A stored
// session this version cannot decode counts as no session.
//
// Forward-auth and the app's routes may find the session in the store's
// token cache; the broker's own routes that need the session (logins,
// sign-out: they write it) read the store itself, so that what they write
// back is never older than what another replica wrote.
func (s *sessions) load(ctx context.Context, token, path string) (context.Context, error) {
	loaded, err := s.sm.Load(s.reading(ctx, token, path), token)
	if err == nil {
		return loaded, nil
	}
	var bad *undecodableError
	if errors.As(err, &bad) {
		fresh, _ := s.sm.Load(ctx, "") // never fails: no store access
		return fresh, err
	}
	return s.unavailable(ctx, err)
}

// reading is ctx for the store's read of token: the token cache may answer
// it unless path (prefix removed) is a route that writes the session.
func (s *sessions) reading(ctx context.Context, token, path string) context.Context {
	if s.cachedReads && token != "" && !needsSession(path) {
		return store.WithCachedRead(ctx, token)
	}
	return ctx
}

// peek reads the session of token without scs, for a request that only
// reads it (forward-auth, at path): no scs context, no copy of the
// session's values. known is false when peek cannot tell (a session it
// cannot decode, an idle timeout that every request extends): load then
// does the whole work. When known, the view is the signed-in session's,
// nil when there is none (no cookie, a token the store does not know, a
// session without an identity). err is the store's. The view is shared:
// only read it.
func (s *sessions) peek(ctx context.Context, token, path string) (v *sessionView, known bool, err error) {
	if s.sm.IdleTimeout > 0 {
		return nil, false, nil
	}
	if token == "" {
		return nil, true, nil
	}
	b, found, err := ctxStore(s.sm.Store).FindCtx(s.reading(ctx, token, path), token)
	if err != nil || !found {
		return nil, err == nil, err
	}
	d, err := s.sm.Codec.(*sessionCodec).decodeShared(b)
	if err != nil {
		return nil, false, nil
	}
	return d.view, true, nil
}

// unavailable is what load returns when the store failed with err: a
// context with an empty session that is never written.
func (s *sessions) unavailable(ctx context.Context, err error) (context.Context, error) {
	fresh, _ := s.sm.Load(ctx, "") // never fails: no store access
	return context.WithValue(fresh, storeDownKey{}, true), errors.Join(errSessionStore, err)
}

// cookieValue is r.Cookie(name)'s value, without its allocations: it runs
// on every request. A request with more than maxFastCookies cookies goes to
// r.Cookie itself, with its limits; FuzzCookieValue checks that both agree.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxFastCookies {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(textproto.TrimString(part), "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

const maxFastCookies = 100

// validCookieValue: every byte is one net/http accepts in a cookie value.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

// available reports whether the request's session was read from the store
// (false: the store failed, and the session is an empty stand-in).
func (s *sessions) available(ctx context.Context) bool {
	down, _ := ctx.Value(storeDownKey{}).(bool)
	return !down
}

// save commits a modified session and writes (or clears) the cookie. It
// must run before the response header is written; handlers call it
// explicitly when they need to report a failure, and responseWriter calls it
// otherwise. A session whose load failed is never written.
func (s *sessions) save(w http.ResponseWriter, r *http.Request, o origin) error {
	ctx := r.Context()
	status := s.sm.Status(ctx)
	if status == scs.Unmodified {
		return nil
	}
	if !s.available(ctx) {
		return errSessionStore
	}
	c := s.cookie(o)
	switch status {
	case scs.Modified:
		token, expiry, err := s.sm.Commit(ctx)
		if err != nil {
			return errors.Join(errSessionStore, err)
		}
		c.Value = token
		// A browser-session cookie, unless the user asked to stay signed
		// in: the server-side expiry ends the session either way.
		if s.persistentMax > 0 && s.sm.GetBool(ctx, keyRemember) {
			c.MaxAge = int(min(time.Until(expiry), s.persistentMax) / time.Second)
			c.Expires = time.Now().Add(time.Duration(c.MaxAge) * time.Second)
		}
	case scs.Destroyed:
		c.Expires = time.Unix(1, 0)
		c.MaxAge = -1
	}
	w.Header().Add("Set-Cookie", c.String())
	w.Header().Add("Cache-Control", `no-cache="Set-Cookie"`)
	return nil
}

// remember makes the session persistent ("Keep me signed in"): it lasts
// persistent_max from now, and its cookie survives the browser. Call it
// after RenewToken, which resets the deadline.
func (s *sessions) remember(ctx context.Context) {
	if s.persistentMax <= 0 {
		return
	}
	s.sm.SetDeadline(ctx, time.Now().Add(s.persistentMax))
	s.sm.Put(ctx, keyRemember, true)
}

func (s *sessions) identity(ctx context.Context) (providers.Identity, bool) {
	id, ok := s.sm.Get(ctx, keyIdentity).(providers.Identity)
	return id, ok && id.Subject != ""
}

// sessionCodec is scs's gob codec, with decoding failures told apart from
// store failures: a session that cannot be decoded (written by a version
// that stored other types) is no session, not an outage. Decoded sessions
// are cached by their encoding (decodeCache).
type sessionCodec struct {
	scs.GobCodec
	cache  *decodeCache
	derive func(providers.Identity) any // sessionView.derived; may be nil
}

type undecodableError struct{ err error }

func (e *undecodableError) Error() string { return "broker: undecodable session: " + e.err.Error() }
func (e *undecodableError) Unwrap() error { return e.err }

// decodeShared is Decode for a reader that never changes the values: they
// may be the cache's own.
func (c *sessionCodec) decodeShared(b []byte) (*decodedSession, error) {
	if d, ok := c.cache.shared(b); ok {
		return d, nil
	}
	deadline, values, err := c.GobCodec.Decode(b)
	if err != nil {
		return nil, &undecodableError{err}
	}
	d := newDecodedSession(deadline, values, c.derive)
	c.cache.put(b, d)
	return d, nil
}

func (c *sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	d, err := c.decodeShared(b)
	if err != nil {
		return time.Time{}, nil, err
	}
	return d.deadline, copyValues(d.values), nil // scs changes its session's map
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

// logStoreError logs a failure of the session store, throttled, with the
// request ID of ctx when it is a request's.
func (s *Server) logStoreError(ctx context.Context, msg string, err error) {
	if ok, skipped := s.storeErrs.Allow(time.Now()); ok {
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

// Index keys. The provider is part of every key: identity is (provider, sub).
func sidKey(provider, sid string) string { return "sid:" + provider + ":" + sid }
func subKey(provider, sub string) string { return "sub:" + provider + ":" + sub }

// sessionTokens is what the broker keeps of a login besides the identity:
// enough for RP-initiated logout (the ID token), back-channel logout (sid)
// and refresh. Kept small: it is in every session.
type sessionTokens struct {
	IDToken      string
	RefreshToken string
	Expiry       time.Time // of the access token; zero when unknown
	SID          string
}

const keyTokens = "tokens"

// The names under which session values are registered are part of every
// stored session: they are written out, not taken from the package path,
// so that moving a type keeps sessions already in Redis readable
// (TestSessionEncodingGolden).
func init() {
	gob.RegisterName("github.com/oidc-broker/oidc-broker/broker.sessionTokens", sessionTokens{})
}
