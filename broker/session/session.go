// Package session is the browser session over scs, and the only code that
// touches scs's SessionManager: a typed record (the identity, the login's
// tokens, the sign-out's CSRF token, a sign-out at the IdP in progress),
// load and a read-only peek for the hot path, sign-in with token renewal,
// and the cookie, whose name, path and Secure flag follow each request's
// external origin; the one path that ends a session and revokes it
// (sign-out, a refused refresh, back-channel logout), and the refresh
// lock (end.go). The store beneath is package store.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Config is what the sessions need of session.*.
type Config struct {
	CookieName   string // without prefix; __Host- and __Secure- are added
	CookieDomain string
	Lifetime     time.Duration
	IdleTimeout  time.Duration
	// PersistentMax is session.persistent_max: 0 offers no persistent
	// cookies.
	PersistentMax time.Duration
	// CachedReads: the store has a token cache, which Load and Peek may
	// use for the reads they are told may be cached.
	CachedReads bool
}

// Session keys. Values read from a session are shared with other requests
// (cache.go): change one by putting a new value, never in place.
const (
	keyIdentity = "identity"
	keyCSRF     = "csrf"
	keyRemember = "remember" // true: a persistent cookie ("Keep me signed in")
)

// Manager wraps scs: scs keeps the data server-side (Load, Commit,
// RenewToken, Destroy) and this type owns the cookie, because its name,
// path and Secure flag depend on each request's external origin (https or
// not, path prefix), which one scs.SessionManager cannot vary.
//
// The same code serves every store (memory or Redis): the store is scs's
// Store plus the broker's store.Backend (package store).
type Manager struct {
	sm       *scs.SessionManager
	baseName string
	// hostName and secureName are baseName with the __Host- and
	// __Secure- prefixes.
	hostName, secureName string
	domain               string
	// persistentMax is session.persistent_max: 0 offers no persistent
	// cookies.
	persistentMax time.Duration
	// cachedReads: the store has a token cache, which Load and Peek may
	// use (store.WithCachedRead).
	cachedReads bool
	// ending is what End and EndStored need (GuardEnds, end.go).
	ending Ending
	// cache answers Peek's cached reads from the store's token cache
	// without a context or the store's wrappers; nil without cachedReads.
	cache cachedFinder
}

// cachedFinder is a store with a token cache (store.Redis.FindCached).
type cachedFinder interface {
	FindCached(token string) (b []byte, found, ok bool)
}

// New makes the sessions of cfg over the store st. derive, when set,
// makes what forward-auth needs of a decoded identity beyond the identity
// itself (View.Derived), once per decoding.
func New(cfg Config, st scs.Store, derive func(providers.Identity) any) *Manager {
	sm := scs.New()
	sm.Store = st
	sm.Codec = &sessionCodec{cache: newDecodeCache(store.CacheBytes), derive: derive}
	sm.Lifetime = cfg.Lifetime
	sm.IdleTimeout = cfg.IdleTimeout
	name := cfg.CookieName
	m := &Manager{sm: sm, baseName: name, hostName: "__Host-" + name, secureName: "__Secure-" + name,
		domain: cfg.CookieDomain, persistentMax: cfg.PersistentMax,
		cachedReads: cfg.CachedReads && cfg.IdleTimeout == 0}
	if cf, ok := st.(cachedFinder); ok && m.cachedReads {
		m.cache = cf
	}
	return m
}

// BaseName is the session cookie's name without prefix; the broker's
// other cookies are named after it.
func (s *Manager) BaseName() string { return s.baseName }

// PersistentMax is session.persistent_max: 0 offers no persistent cookies.
func (s *Manager) PersistentMax() time.Duration { return s.persistentMax }

// Cookie returns the session cookie's attributes for an external origin
// (secure: https; prefix: its path prefix, "" at the root): HttpOnly,
// SameSite=Lax, Secure behind https, and the strongest name prefix the
// browser will accept (__Host- needs Path=/ and no Domain).
func (s *Manager) Cookie(secure bool, prefix string) http.Cookie {
	c := http.Cookie{Name: s.CookieName(secure, prefix), Path: "/", Domain: s.domain, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure}
	if prefix != "" {
		c.Path = prefix + "/"
	}
	return c
}

// CookieName is Cookie(secure, prefix).Name, without making the rest
// (every request reads the cookie).
func (s *Manager) CookieName(secure bool, prefix string) string {
	switch {
	case secure && s.domain == "" && prefix == "": // Path "/": __Host-
		return s.hostName
	case secure:
		return s.secureName
	}
	return s.baseName
}

// ErrStore wraps store failures; the broker answers 503.
var ErrStore = errors.New("broker: session store unavailable")

// storeDownKey marks, in a request's context, a session that could not be
// read: the request goes on with an empty session, which must never be
// written (it would overwrite or shadow the real one).
type storeDownKey struct{}

// Load puts the session of token (the request's cookie) into ctx; cached
// says the store's token cache may answer (the request only reads the
// session). It always returns a usable
// context. When the store fails, that context carries an empty session
// marked unavailable (see available), and the error says why. A stored
// session this version cannot decode counts as no session.
//
// Forward-auth and the app's routes may find the session in the store's
// token cache; the broker's own routes that need the session (logins,
// sign-out: they write it) read the store itself, so that what they write
// back is never older than what another replica wrote.
func (s *Manager) Load(ctx context.Context, token string, cached bool) (context.Context, error) {
	loaded, err := s.sm.Load(s.reading(ctx, token, cached), token)
	if err == nil {
		return loaded, nil
	}
	var bad *undecodableError
	if errors.As(err, &bad) {
		fresh, _ := s.sm.Load(ctx, "") // never fails: no store access
		return fresh, err
	}
	return s.Unavailable(ctx, err)
}

// reading is ctx for the store's read of token: the token cache may answer
// it when cached (the request does not write the session).
func (s *Manager) reading(ctx context.Context, token string, cached bool) context.Context {
	if s.cachedReads && token != "" && cached {
		return store.WithCachedRead(ctx, token)
	}
	return ctx
}

// Peek reads the session of token without scs, for a request that only
// reads it (forward-auth): no scs context, no copy of the
// session's values. known is false when peek cannot tell (a session it
// cannot decode, an idle timeout that every request extends): load then
// does the whole work. When known, the view is the signed-in session's,
// nil when there is none (no cookie, a token the store does not know, a
// session without an identity). err is the store's. The view is shared:
// only read it.
func (s *Manager) Peek(ctx context.Context, token string, cached bool) (v *View, known bool, err error) {
	if s.sm.IdleTimeout > 0 {
		return nil, false, nil
	}
	if token == "" {
		return nil, true, nil
	}
	b, found, ok := []byte(nil), false, false
	if cached && s.cache != nil {
		// A hit of the token cache (Redis) is neither a store operation
		// nor timed as one; a miss is read below, and fills the cache.
		b, found, ok = s.cache.FindCached(token)
	}
	if !ok {
		var err error
		if b, found, err = ContextStore(s.sm.Store).FindCtx(s.reading(ctx, token, cached), token); err != nil {
			return nil, false, err
		}
	}
	if !found {
		return nil, true, nil
	}
	d, err := s.sm.Codec.(*sessionCodec).decodeShared(b)
	if err != nil {
		return nil, false, nil
	}
	return d.view, true, nil
}

// Unavailable is what Load returns when the store failed with err: a
// context with an empty session that is never written.
func (s *Manager) Unavailable(ctx context.Context, err error) (context.Context, error) {
	fresh, _ := s.sm.Load(ctx, "") // never fails: no store access
	return context.WithValue(fresh, storeDownKey{}, true), errors.Join(ErrStore, err)
}

// Available reports whether the request's session was read from the store
// (false: the store failed, and the session is an empty stand-in).
func (s *Manager) Available(ctx context.Context) bool {
	down, _ := ctx.Value(storeDownKey{}).(bool)
	return !down
}

// Save commits a modified session and writes (or clears) the cookie. It
// must run before the response header is written; handlers call it
// explicitly when they need to report a failure, and responseWriter calls it
// otherwise. A session whose load failed is never written.
func (s *Manager) Save(w http.ResponseWriter, r *http.Request, secure bool, prefix string) error {
	ctx := r.Context()
	status := s.sm.Status(ctx)
	if status == scs.Unmodified {
		return nil
	}
	if !s.Available(ctx) {
		return ErrStore
	}
	c := s.Cookie(secure, prefix)
	switch status {
	case scs.Modified:
		token, expiry, err := s.sm.Commit(ctx)
		if err != nil {
			return errors.Join(ErrStore, err)
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
func (s *Manager) remember(ctx context.Context) {
	if s.persistentMax <= 0 {
		return
	}
	s.sm.SetDeadline(ctx, time.Now().Add(s.persistentMax))
	s.sm.Put(ctx, keyRemember, true)
}

// Identity is the signed-in identity of the request's session; ok is
// false when nobody is signed in.
func (s *Manager) Identity(ctx context.Context) (providers.Identity, bool) {
	id, ok := s.sm.Get(ctx, keyIdentity).(providers.Identity)
	return id, ok && id.Subject != ""
}

// CookieValue is r.Cookie(name)'s value, without its allocations: it runs
// on every request. A request with more than maxFastCookies cookies goes to
// r.Cookie itself, with its limits; FuzzCookieValue checks that both agree.
func CookieValue(r *http.Request, name string) (string, bool) {
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

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("session: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
