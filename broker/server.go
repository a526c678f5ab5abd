// Package broker is oidc-broker's HTTP surface: sessions, the login flow
// (sign-in page, start, callback), forward-auth, the identity relay and the
// reverse proxy. It knows identity providers only through the providers
// package, and its external origin only through proxyfix.
package broker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/proxyfix"
	"github.com/oidc-broker/oidc-broker/selection"
)

// Options are the seams of a Server; the zero value is fine.
type Options struct {
	// Logger receives request and audit logs. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient is used for every call to identity providers.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Registry replaces the providers built from Config.Providers (tests,
	// embedding). Config.Providers may then be empty.
	Registry *providers.Registry
}

// Server is a configured broker. Build it with New and serve Handler().
type Server struct {
	cfg       Config
	opts      Options
	log       *slog.Logger
	public    *origin
	registry  *providers.Registry
	sessions  *sessions
	selection *selection.Page
	catalog   *selection.Catalog
	fix       *proxyfix.Fix
	upstreams []*upstream // most specific first; empty: forward-auth only
	store     backend
	rules     *policy          // routes and default (rules.go)
	redirects *redirectHosts   // redirect_hosts
	assertion *assertionSigner // nil unless assertion.enabled
	local     *localLogins     // password sign-ins: rate limits, Basic paths
	logouts   *logoutLimiter   // back-channel logout refusals (backchannel.go)

	// closeStore releases the session store (Close); storeErrs throttles
	// the log of its failures.
	closeStore func() error
	storeErrs  *errorLog
}

// New validates cfg and builds a Server. It makes no network call: identity
// providers are discovered on first use.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.validate(opts.Registry == nil); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, public: parsePublicURL(cfg.PublicURL),
		storeErrs: &errorLog{interval: 10 * time.Second},
		local:     newLocalLogins(cfg.Providers, opts.Now)}
	sessionStore, store, closeStore, err := openStore(cfg.Session, opts.Now)
	if err != nil {
		return nil, err
	}
	s.sessions, s.store, s.closeStore = newSessions(cfg.Session, sessionStore), store, closeStore
	if s.registry = opts.Registry; s.registry == nil {
		s.registry, err = providers.NewRegistry(cfg.Providers, providers.Options{
			HTTPClient: opts.HTTPClient, Logger: opts.Logger, Now: opts.Now})
		if err != nil {
			return nil, err
		}
	}
	if s.selection, err = selection.New(cfg.Selection); err != nil {
		return nil, err
	}
	// Icons are read and the page's provider list prepared now, so a bad
	// icon fails the start, not the first visit.
	if s.catalog, err = s.newCatalog(); err != nil {
		return nil, err
	}
	if s.fix, err = proxyfix.New(cfg.TrustedProxies, opts.Logger); err != nil {
		return nil, err
	}
	if s.assertion, err = newAssertionSigner(cfg, opts.Now, opts.Logger); err != nil {
		return nil, err
	}
	s.upstreams = s.newUpstreams(cfg.upstreamConfigs())
	s.rules = compilePolicy(cfg.Routes, cfg.Default)
	s.redirects = compileRedirectHosts(cfg.RedirectHosts)
	s.initLogout() // backchannel.go: ended sessions stay ended
	return s, nil
}

// Handler returns the broker's HTTP handler. The middleware order is the
// security model, outermost first:
//
//  1. strip client-sent identity headers (before anything can read them);
//  2. proxyfix: establish scheme, host, prefix and client address;
//  3. allowed_hosts: refuse unknown hosts before any URL is built;
//  4. the session (cookie chosen by the external origin);
//  5. routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /oauth2/sign_in", s.handleSignIn)
	mux.HandleFunc("GET /oauth2/static/{asset...}", s.handleStatic)
	mux.HandleFunc("GET /oauth2/start/{provider}", s.handleStart)
	mux.HandleFunc("GET /oauth2/callback/{provider}", s.handleCallback)
	mux.HandleFunc("GET /oauth2/local/{provider}", s.handleLocalForm)
	mux.HandleFunc("POST /oauth2/local/{provider}", s.handleLocalLogin)
	mux.Handle("/oauth2/auth", s.withBasicAuth(http.HandlerFunc(s.handleAuth), true))
	mux.HandleFunc("GET /oauth2/userinfo", s.handleUserinfo)
	mux.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /oauth2/sign_out", s.handleSignOutPage)
	mux.HandleFunc("POST /oauth2/sign_out", s.handleSignOut)
	mux.HandleFunc("GET /oauth2/signed_out/{provider}", s.handleSignedOut)
	mux.HandleFunc("POST /oauth2/backchannel_logout/{provider}", s.handleBackchannelLogout)
	mux.HandleFunc("/oauth2/", s.handleNotFound)
	mux.Handle("/", s.withBasicAuth(http.HandlerFunc(s.handleApp), false))

	var h http.Handler = mux
	h = s.withSession(h)
	h = s.withAllowedHosts(h)
	h = s.withPrefix(h)
	h = s.fix.Handler(h)
	h = stripIdentityHeaders(h, s.cfg.Assertion.Header)
	return h
}

func (s *Server) withAllowedHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(s.cfg.AllowedHosts, proxyfix.FromRequest(r).Host) {
			s.log.Debug("host not allowed", "host", proxyfix.FromRequest(r).Host)
			http.Error(w, "Bad Request: unknown host", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withPrefix serves the broker's routes under the external path prefix:
// with public_url https://example.com/auth the IdP calls back at
// /auth/oauth2/callback/x, and the mux sees /oauth2/callback/x. A proxy
// that strips the prefix itself and says so in X-Forwarded-Prefix needs
// nothing here.
func (s *Server) withPrefix(next http.Handler) http.Handler {
	if s.public == nil || s.public.Prefix == "" {
		return next
	}
	return http.StripPrefix(s.public.Prefix, next)
}

func (s *Server) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		o := s.originOf(r)
		r, err := s.sessions.load(r, o)
		switch {
		case errors.Is(err, errSessionStore):
			// Fail closed without failing everything: routes that need the
			// session answer 503; public ones (and those the access rules
			// find public) go on with an empty session that is never saved.
			if needsSession(r.URL.Path) {
				s.sessionUnavailable(w, err)
				return
			}
			s.logStoreError("session load failed", err)
		case err != nil:
			s.log.Warn("session ignored", "error", err)
		}
		sw := &sessionWriter{ResponseWriter: w, s: s.sessions, r: r, o: o,
			logErr: func(err error) { s.log.Error("session save failed", "error", err) }}
		next.ServeHTTP(sw, r)
		sw.commit()
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz reports whether the broker can serve logins: the session
// store answers within readyTimeout. (The memory store always does.)
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.ping(ctx); err != nil {
		s.logStoreError("readiness: session store unavailable", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("session store unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// readyTimeout bounds the readiness check's ping.
const readyTimeout = 2 * time.Second

// Close releases the session store's connections. The handler must not be
// used afterwards.
func (s *Server) Close() error { return s.closeStore() }

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, errorPage{Status: http.StatusNotFound, Title: "Not found",
		Message: "There is no such page.", RetryURL: s.originOf(r).Path("/oauth2/sign_in")})
}

// Registry returns the server's providers.
func (s *Server) Registry() *providers.Registry { return s.registry }
