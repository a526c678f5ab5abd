package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Session keys.
const (
	keyIdentity = "identity"
	keyPending  = "pending"
	keyCSRF     = "csrf"
)

// sessions wraps scs: scs keeps the data server-side (Load, Commit,
// RenewToken, Destroy) and this type owns the cookie, because its name,
// path and Secure flag depend on each request's external origin (https or
// not, path prefix), which one scs.SessionManager cannot vary.
type sessions struct {
	sm       *scs.SessionManager
	baseName string
	domain   string
}

func newSessions(cfg SessionConfig) *sessions {
	sm := scs.New()
	sm.Store = memstore.New()
	sm.Lifetime = cfg.Lifetime
	if sm.Lifetime == 0 {
		sm.Lifetime = DefaultLifetime
	}
	sm.IdleTimeout = cfg.IdleTimeout
	name := cfg.CookieName
	if name == "" {
		name = DefaultCookieName
	}
	return &sessions{sm: sm, baseName: name, domain: cfg.CookieDomain}
}

// cookie returns the session cookie's attributes for an origin: HttpOnly,
// SameSite=Lax, Secure behind https, and the strongest name prefix the
// browser will accept (__Host- needs Path=/ and no Domain).
func (s *sessions) cookie(o origin) http.Cookie {
	c := http.Cookie{Name: s.baseName, Path: "/", Domain: s.domain, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: o.Secure()}
	if o.Prefix != "" {
		c.Path = o.Prefix + "/"
	}
	switch {
	case c.Secure && c.Domain == "" && c.Path == "/":
		c.Name = "__Host-" + s.baseName
	case c.Secure:
		c.Name = "__Secure-" + s.baseName
	}
	return c
}

// errSessionStore wraps store failures; the broker answers 503.
var errSessionStore = errors.New("broker: session store unavailable")

// load puts the request's session into its context.
func (s *sessions) load(r *http.Request, o origin) (*http.Request, error) {
	var token string
	if c, err := r.Cookie(s.cookie(o).Name); err == nil {
		token = c.Value
	}
	ctx, err := s.sm.Load(r.Context(), token)
	if err != nil {
		return nil, errors.Join(errSessionStore, err)
	}
	return r.WithContext(ctx), nil
}

// save commits a modified session and writes (or clears) the cookie. It
// must run before the response header is written; handlers call it
// explicitly when they need to report a failure, and sessionWriter calls it
// otherwise.
func (s *sessions) save(w http.ResponseWriter, r *http.Request, o origin) error {
	ctx := r.Context()
	c := s.cookie(o)
	switch s.sm.Status(ctx) {
	case scs.Modified:
		// A browser-session cookie: the server-side deadline ends the
		// session; the cookie ends with the browser.
		token, _, err := s.sm.Commit(ctx)
		if err != nil {
			return errors.Join(errSessionStore, err)
		}
		c.Value = token
	case scs.Destroyed:
		c.Expires = time.Unix(1, 0)
		c.MaxAge = -1
	default:
		return nil
	}
	w.Header().Add("Set-Cookie", c.String())
	w.Header().Add("Cache-Control", `no-cache="Set-Cookie"`)
	return nil
}

func (s *sessions) identity(ctx context.Context) (providers.Identity, bool) {
	id, ok := s.sm.Get(ctx, keyIdentity).(providers.Identity)
	return id, ok && id.Subject != ""
}

// sessionWriter commits the session just before the response header goes
// out, for handlers that did not call save themselves.
type sessionWriter struct {
	http.ResponseWriter
	s      *sessions
	r      *http.Request
	o      origin
	logErr func(error)
	done   bool
}

func (w *sessionWriter) commit() {
	if err := w.saveNow(); err != nil {
		w.logErr(err)
	}
}

// saveNow commits once; later calls do nothing.
func (w *sessionWriter) saveNow() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.s.save(w.ResponseWriter, w.r, w.o)
}

// saveSession commits the session of the response w now, so that a handler
// can turn a store failure into an error page. Without a session writer
// (a handler used outside the session middleware) it does nothing.
func saveSession(w http.ResponseWriter) error {
	if sw, ok := w.(*sessionWriter); ok {
		return sw.saveNow()
	}
	return nil
}

func (w *sessionWriter) WriteHeader(code int) { w.commit(); w.ResponseWriter.WriteHeader(code) }
func (w *sessionWriter) Write(b []byte) (int, error) {
	w.commit()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack (WebSockets).
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
