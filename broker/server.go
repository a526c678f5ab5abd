// Package broker is oidc-broker's HTTP surface: sessions, the login flow
// (sign-in page, start, callback), forward-auth, the identity relay and the
// reverse proxy. It knows identity providers only through the providers
// package, and its external origin only through proxyfix.
package broker

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/basicauth"
	"github.com/oidc-broker/oidc-broker/broker/bearer"
	"github.com/oidc-broker/oidc-broker/broker/metrics"
	"github.com/oidc-broker/oidc-broker/broker/pages"
	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/broker/readiness"
	"github.com/oidc-broker/oidc-broker/broker/redirect"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/broker/upstream"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
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
	// Metrics, when set, also receives the broker's Prometheus collectors
	// (an embedding program's registry); MetricsHandler serves them either
	// way. One Server per Registerer at a time: Close takes them out.
	Metrics prometheus.Registerer
}

// Server is a configured broker. Build it with New, serve Handler(),
// protect an app's own handlers with Require or Protect, and change the
// configuration with Reload.
//
// Each value is one generation of the configuration. live points at the
// newest one and is shared by all of them: the exported methods act on the
// newest generation, while a request that already started finishes on the
// generation it started with. The session store, the assertion keys, the
// logger and the limiters live for the whole process; the rest is rebuilt
// by configure.
type Server struct {
	live     *atomic.Pointer[Server]
	reloadMu *sync.Mutex  // one Reload at a time
	handler  http.Handler // this generation's middleware chain (Handler)
	app      http.Handler // everything outside /oauth2/: access rules, then upstreams

	cfg          Config
	opts         Options
	log          *slog.Logger
	public       *origin
	registry     *providers.Registry
	sessions     *session.Manager
	selection    *selection.Page
	pages        *template.Template // the broker's pages in the selection page's frame (pages.go)
	catalog      *selection.Catalog
	fix          *proxyfix.Fix
	upstreams    *upstream.Set // most specific first; empty: forward-auth only
	store        store.Backend
	rules        *access.Policy       // routes and default
	allowedHosts []access.HostPattern // allowed_hosts
	redirects    *redirect.Hosts      // redirect_hosts
	assertion    *relay.Signer        // nil unless assertion.enabled
	local        *localLogins         // password sign-ins: rate limits, Basic paths
	bearer       *bearer.Verifier     // API clients' access tokens (apiclients.go); nil unless a provider accepts them
	quick        bool                 // forward-auth may answer through quickAuth (forwardauth.go)
	stripAlso    []string             // client headers stripped besides the identity's: the assertion's, the tokens' (tokenrelay.go)
	tokenHosts   []access.HostPattern // forward_auth.hosts
	pending      *pending.Logins      // sign-ins in progress, in their browsers' cookies
	logouts      *ratelimit.Failures  // back-channel logout refusals (backchannel.go)
	idps         *readiness.IdPs      // /readyz's look at the IdPs; nil unless required
	tunnels      *upstream.Tunnels    // WebSockets of signed-in sessions, closed when they end (tunnels.go)
	// auditBudget bounds the audit lines anonymous clients can cause
	// (audit.go).
	auditBudget *audit.Budget

	// closeStore releases the session store (Close); storeErrs throttles
	// the log of its failures.
	closeStore func() error
	storeErrs  *store.ErrorLog
	metrics    *metrics.Collectors // Prometheus collectors, for the whole process
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
	opts.Logger = withRequestIDs(opts.Logger) // request_id in the lines logged for a request (requestlog.go)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, live: new(atomic.Pointer[Server]), reloadMu: new(sync.Mutex),
		storeErrs:   &store.ErrorLog{Interval: 10 * time.Second},
		local:       &localLogins{limits: ratelimit.NewLogins(opts.Now)},
		auditBudget: &audit.Budget{}}
	var err error
	if s.metrics, err = metrics.New(opts.Metrics, s.newestRegistry); err != nil {
		return nil, err
	}
	built := false
	defer func() {
		if !built { // the program's registry must not keep a failed Server's collectors
			s.metrics.Unregister()
		}
	}()
	if s.assertion, err = relay.NewSigner(cfg.Assertion, cfg.Upstream, opts.Now, opts.Logger); err != nil {
		return nil, err
	}
	sessionStore, backend, closeStore, err := openStore(cfg.Session, opts.Now, opts.Logger)
	if err != nil {
		return nil, err
	}
	s.sessions, s.store, s.closeStore = newSessions(cfg.Session, sessionStore, relayHeadersOf), backend, closeStore
	// Store operations timed and their failures counted (package metrics),
	// when there is a network between: the memory store's are map accesses
	// that take nanoseconds and cannot fail, and timing them would cost
	// more than they do.
	if cfg.Session.Store == "redis" {
		if j, ok := s.store.(interface{ JournalEntries() int }); ok {
			s.metrics.JournalEntries(j.JournalEntries)
		}
		s.sessions.WrapStore(func(st scs.CtxStore) scs.CtxStore { return session.ContextStore(s.metrics.ObserveStore(st)) })
		s.store = s.metrics.ObserveBackend(s.store)
	}
	s.pending = pending.New(s.sessions.BaseName(), s.store)
	s.initLogout() // backchannel.go: ended sessions stay ended
	// tunnels.go: the WebSockets of a session close when it ends.
	s.initTunnels()
	if err := s.configure(nil); err != nil {
		_ = closeStore()
		return nil, err
	}
	s.live.Store(s)
	built = true
	return s, nil
}

// configure builds the parts of s that follow the configuration and change
// on Reload: providers, the sign-in page, trusted proxies, upstreams,
// access rules, redirect hosts, Basic paths, and the handler. prev is the
// generation being replaced (nil in New): providers whose settings did not
// change are carried over with what they learnt (discovery, keys).
func (s *Server) configure(prev *Server) error {
	cfg := s.cfg
	s.public = parsePublicURL(cfg.PublicURL)
	s.local = &localLogins{limits: s.local.limits, basic: basicauth.RoutesOf(cfg.Providers)}
	var err error
	switch {
	case s.opts.Registry != nil:
		s.registry = s.opts.Registry
	case prev != nil:
		s.registry, err = prev.registry.Update(cfg.Providers, s.providerOptions())
	default:
		s.registry, err = providers.NewRegistry(all.Types(), cfg.Providers, s.providerOptions())
	}
	if err != nil {
		return err
	}
	s.bearer = s.newBearer()
	s.stripAlso = append([]string{cfg.Assertion.Header}, cfg.tokenHeaderNames()...)
	s.tokenHosts = compileHosts(cfg.ForwardAuth.Hosts)
	if s.selection, err = selection.New(cfg.Selection); err != nil {
		return err
	}
	if s.pages, err = s.selection.Templates(pages.FS, pages.Pattern); err != nil {
		return err
	}
	// Icons are read and the page's provider list prepared now, so a bad
	// icon fails the start, not the first visit.
	if s.catalog, err = s.newCatalog(); err != nil {
		return err
	}
	if s.fix, err = proxyfix.New(cfg.TrustedProxies, s.opts.Logger); err != nil {
		return err
	}
	s.upstreams = s.newUpstreams(cfg.upstreamConfigs())
	s.rules = access.Compile(cfg.Routes, cfg.Default).WithClock(s.opts.Now)
	s.allowedHosts = compileHosts(cfg.AllowedHosts)
	s.redirects = redirect.Compile(cfg.RedirectHosts)
	s.idps = readiness.New(cfg.Readiness, s.registry, s.opts.Now, s.log)
	if prev != nil {
		s.idps.CarryOver(prev.idps)
	}
	// Forward-auth's 202 may skip entry's request state (quickAuth) when
	// no Basic path and no token relay can apply to it.
	s.quick = len(s.local.basic) == 0 && !cfg.ForwardAuth.Enabled()
	s.handler = s.routes()
	return nil
}

func (s *Server) providerOptions() providers.Options {
	return providers.Options{HTTPClient: s.opts.HTTPClient, Logger: s.opts.Logger, Now: s.opts.Now, Observe: s.metrics.ObserveIdP}
}

// Handler returns the broker's HTTP handler: its own routes under /oauth2/,
// /healthz and /readyz, and everything else through the access rules to
// the upstreams (a 404 without upstreams). An embedding program mounts it
// at /oauth2/ of its own mux. It always serves the newest configuration
// (Reload).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.live.Load().handler.ServeHTTP(w, r)
	})
}

// routes builds this generation's handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.HandleFunc("GET /oauth2/sign_in", s.handleSignIn)
	mux.HandleFunc("GET /oauth2/static/{asset...}", s.handleStatic)
	mux.HandleFunc("GET /oauth2/start/{provider}", s.handleStart)
	mux.HandleFunc("GET /oauth2/callback/{provider}", s.handleCallback)
	mux.HandleFunc("GET /oauth2/local/{provider}", s.handleLocalForm)
	mux.HandleFunc("POST /oauth2/local/{provider}", s.handleLocalLogin)
	auth := s.withBearer(s.withBasicAuth(http.HandlerFunc(s.handleAuth), true), true)
	mux.Handle("/oauth2/auth", auth)
	mux.HandleFunc("GET /oauth2/userinfo", s.handleUserinfo)
	mux.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /oauth2/sign_out", s.handleSignOutPage)
	mux.HandleFunc("POST /oauth2/sign_out", s.handleSignOut)
	mux.HandleFunc("GET /oauth2/signed_out/{provider}", s.handleSignedOut)
	mux.HandleFunc("POST /oauth2/backchannel_logout/{provider}", s.handleBackchannelLogout)
	mux.HandleFunc("/oauth2/", s.handleNotFound)
	s.app = s.withBearer(s.withBasicAuth(s.guard(s.rules.DecideStepUp, http.HandlerFunc(s.serveUpstream)), false), false)
	mux.Handle("/", s.app)
	// Forward-auth is asked on every request to the apps behind a proxy:
	// its one path skips the mux's pattern matching.
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/auth" {
			auth.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return s.entry(routes, true)
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz reports whether the broker can serve logins: the session
// store answers within readyTimeout (the memory store always does), and
// with readiness.require_idp an identity provider is reachable
// (package readiness), both within readyTimeout.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logStoreError(ctx, "readiness: session store unavailable", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("session store unavailable\n"))
		return
	}
	if err := s.idps.Check(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// readyTimeout bounds the readiness check's ping.
const readyTimeout = 2 * time.Second

// Close closes the WebSockets the broker proxies, releases the session
// store's connections and takes the broker's collectors out of
// Options.Metrics (another Server may register there then). The handler
// must not be used afterwards.
func (s *Server) Close() error {
	cur := s.live.Load()
	cur.metrics.Unregister()
	cur.tunnels.CloseAll()
	return cur.closeStore()
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	// The line with the request ID that the page shows.
	s.logAnonymous(r.Context(), slog.LevelInfo, "page not found", "path", r.URL.EscapedPath(), "client", clientAddr(r))
	s.renderError(w, r, errorPage{Status: http.StatusNotFound, Title: "not_found_title", Message: "not_found",
		RetryURL: s.originOf(r).Path("/oauth2/sign_in")})
}

// Registry returns the providers of the newest configuration.
func (s *Server) Registry() *providers.Registry { return s.live.Load().registry }
