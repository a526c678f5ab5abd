package broker

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Prometheus metrics (docs/observability.md). Every label has a bounded set
// of values: provider ids from the configuration ("unknown" for any other
// id a request names), reasons and results from fixed lists; never a user,
// a path or an error's text.

// MetricsConfig configures the metrics endpoint of the binary.
type MetricsConfig struct {
	// Listen is the address of a separate HTTP server that serves the
	// metrics at /metrics, such as "127.0.0.1:9180". Default "" (off). The
	// endpoint has no authentication: bind it where only the monitoring
	// system can reach it.
	Listen string `yaml:"listen"`
}

// metrics are the broker's collectors. A Server keeps them for the whole
// process: every generation (Reload) shares one value, so counters never
// restart, and nothing in them follows the configuration (provider_up reads
// the newest registry at scrape time).
type metrics struct {
	gatherer prometheus.Gatherer // what MetricsHandler serves
	handler  http.Handler
	// also is the embedding program's registry (Options.Metrics), which
	// holds own until unregister.
	also       prometheus.Registerer
	own        []prometheus.Collector
	unregistry sync.Once

	loginsStarted     *prometheus.CounterVec   // provider
	loginsSucceeded   *prometheus.CounterVec   // provider
	loginsFailed      *prometheus.CounterVec   // provider, reason
	callback          *prometheus.HistogramVec // provider, result
	logouts           *prometheus.CounterVec   // provider, kind
	refusals          *prometheus.CounterVec   // event, reason
	accessDenied      *prometheus.CounterVec   // via
	forwardAuth       *prometheus.CounterVec   // decision
	sessionsRefreshed *prometheus.CounterVec   // provider
	sessionsEnded     *prometheus.CounterVec   // provider, reason
	idpDuration       *prometheus.HistogramVec // provider, endpoint
	idpErrors         *prometheus.CounterVec   // provider, endpoint, kind
	storeDuration     *prometheus.HistogramVec // op
	storeErrors       *prometheus.CounterVec   // op

	// The series of every request, resolved once.
	decisions map[string]prometheus.Counter // forwardAuth by decision
	storeOps  map[string]storeOp            // by op
}

// storeOp is the series of one session store operation.
type storeOp struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// The operations on session data (storemetrics.go), whose series exist
// from the start.
var storeOpNames = []string{"find", "commit", "delete", "all"}

// Values of the forward-auth decision label.
const (
	decisionAllowed         = "allowed"
	decisionDenied          = "denied"
	decisionUnauthenticated = "unauthenticated"
	decisionUnavailable     = "unavailable"
)

// storeBuckets suit a store that answers in about a millisecond.
var storeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// unregister takes the collectors out of the embedding program's registry,
// so that another Server can register there (New failed, or Close).
func (m *metrics) unregister() {
	if m == nil || m.also == nil {
		return
	}
	m.unregistry.Do(func() {
		for _, c := range m.own {
			m.also.Unregister(c)
		}
	})
}

// newMetrics makes the collectors and registers them with a registry of
// their own, which MetricsHandler serves with the Go runtime's and the
// process's metrics, and with also when it is not nil (an embedding
// program's registry). registry returns the newest provider registry, read
// at each scrape.
func newMetrics(also prometheus.Registerer, registry func() *providers.Registry) (*metrics, error) {
	const ns = "oidc_broker"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &metrics{
		loginsStarted:   counter("logins_started_total", "Logins sent to an identity provider (or its password form).", "provider"),
		loginsSucceeded: counter("logins_succeeded_total", "Logins that created a session.", "provider"),
		loginsFailed:    counter("logins_failed_total", "Logins refused or failed, by reason.", "provider", "reason"),
		callback: histogram("callback_duration_seconds", "Time to answer an identity provider's callback, by result (succeeded, failed, error).",
			prometheus.DefBuckets, "provider", "result"),
		logouts: counter("logouts_total", "Sign-outs: local (the broker's session), idp (back from the IdP's sign-out), backchannel (a logout token).",
			"provider", "kind"),
		refusals:          counter("refusals_total", "Refused sign-outs, back-channel logouts and HTTP Basic credentials, by reason.", "event", "reason"),
		accessDenied:      counter("access_denied_total", "Signed-in users refused by the access rules (403), by where: proxy or forward_auth.", "via"),
		forwardAuth:       counter("forward_auth_decisions_total", "Forward-auth answers: allowed, denied, unauthenticated, unavailable.", "decision"),
		sessionsRefreshed: counter("sessions_refreshed_total", "Sessions whose tokens were renewed with a refresh token.", "provider"),
		sessionsEnded:     counter("sessions_ended_total", "Sessions ended because their login could not be renewed, by reason.", "provider", "reason"),
		idpDuration: histogram("idp_request_duration_seconds", "HTTP requests to identity providers, by endpoint (discovery, jwks, token, userinfo, other).",
			prometheus.DefBuckets, "provider", "endpoint"),
		idpErrors: counter("idp_request_errors_total", "HTTP requests to identity providers that failed (network) or were answered with an error status (http_4xx, http_5xx).",
			"provider", "endpoint", "kind"),
		storeDuration: histogram("session_store_duration_seconds", "Session store operations.", storeBuckets, "op"),
		storeErrors:   counter("session_store_errors_total", "Session store operations that failed.", "op"),
	}
	m.decisions = map[string]prometheus.Counter{}
	for _, d := range []string{decisionAllowed, decisionDenied, decisionUnauthenticated, decisionUnavailable} {
		m.decisions[d] = m.forwardAuth.WithLabelValues(d)
	}
	m.storeOps = map[string]storeOp{}
	for _, op := range storeOpNames {
		m.storeOps[op] = storeOp{duration: m.storeDuration.WithLabelValues(op), errors: m.storeErrors.WithLabelValues(op)}
	}
	up := &providersUp{registry: registry, desc: prometheus.NewDesc(ns+"_provider_up",
		"Whether an identity provider can be used (1) or is unreachable (0), as the sign-in page shows it.", []string{"provider"}, nil)}
	own := []prometheus.Collector{m.loginsStarted, m.loginsSucceeded, m.loginsFailed, m.callback, m.logouts, m.refusals,
		m.accessDenied, m.forwardAuth, m.sessionsRefreshed, m.sessionsEnded, m.idpDuration, m.idpErrors,
		m.storeDuration, m.storeErrors, up}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(own...)
	for i, c := range own {
		if also == nil {
			break
		}
		if err := also.Register(c); err != nil {
			for _, done := range own[:i] {
				also.Unregister(done)
			}
			return nil, fmt.Errorf("broker: metrics: %w", err)
		}
	}
	m.also, m.own = also, own
	m.gatherer = reg
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

// MetricsHandler serves the broker's metrics in the Prometheus text format,
// with those of the Go runtime and the process. The binary serves it on
// metrics.listen; an embedding program mounts it where it likes (or gives
// New its own registry in Options.Metrics).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

// newestRegistry is the provider registry of the newest generation, nil
// before New has finished.
func (s *Server) newestRegistry() *providers.Registry {
	if g := s.live.Load(); g != nil {
		return g.registry
	}
	return nil
}

// providersUp reports each provider's Status when scraped. A provider not
// yet discovered counts as up, and the scrape may start its discovery in
// the background, as the sign-in page does.
type providersUp struct {
	desc     *prometheus.Desc
	registry func() *providers.Registry
}

func (c *providersUp) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *providersUp) Collect(ch chan<- prometheus.Metric) {
	r := c.registry()
	if r == nil {
		return
	}
	for _, p := range r.All() {
		v := 0.0
		if p.Status().Available {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, p.ID())
	}
}

// observeIdP records one request to an identity provider
// (providers.Options.Observe).
func (m *metrics) observeIdP(c providers.IdPCall) {
	m.idpDuration.WithLabelValues(c.Provider, c.Endpoint).Observe(c.Duration.Seconds())
	var kind string
	switch {
	case c.Err != nil:
		kind = "network"
	case c.Status >= 500:
		kind = "http_5xx"
	case c.Status >= 400:
		kind = "http_4xx"
	default:
		return
	}
	m.idpErrors.WithLabelValues(c.Provider, c.Endpoint, kind).Inc()
}

// countForwardAuth counts a forward-auth answer: the access decision, or
// unavailable when the session store failed and the route is not public.
func (s *Server) countForwardAuth(d access.Decision, err error) {
	v := decisionUnauthenticated
	switch {
	case err != nil && d != access.Public:
		v = decisionUnavailable
	case d == access.Public || d == access.Allowed:
		v = decisionAllowed
	case d == access.Forbidden:
		v = decisionDenied
	}
	s.metrics.decisions[v].Inc()
}

// timeCallback starts timing an identity provider's callback; the function
// it returns records the time, with the result that audit noted for the
// request (error: the callback ended without a login event, e.g. when the
// session store failed).
func (s *Server) timeCallback(r *http.Request) func() {
	start := time.Now()
	return func() {
		result := "error"
		if info := requestInfoFrom(r.Context()); info != nil {
			switch info.login {
			case evLoginSucceeded:
				result = "succeeded"
			case evLoginFailed:
				result = "failed"
			}
		}
		s.metrics.callback.WithLabelValues(s.providerLabel(r.PathValue("provider")), result).Observe(time.Since(start).Seconds())
	}
}

// providerLabel is id when it names a configured provider, else "unknown":
// request paths can name anything.
func (s *Server) providerLabel(id string) string {
	if _, ok := s.registry.Get(id); ok {
		return id
	}
	return "unknown"
}

// metricsProblems checks metrics.listen.
func (c Config) metricsProblems() []error {
	l := c.Metrics.Listen
	if l == "" {
		return nil
	}
	if p := listenProblem(l); p != "" {
		return []error{fmt.Errorf("metrics.listen: %s", p)}
	}
	if l == c.Listen || (c.Listen == "" && l == DefaultListen) {
		return []error{fmt.Errorf("metrics.listen: %q is the address of listen; the metrics need an address of their own", l)}
	}
	return nil
}

// metricsWarnings: metrics served beyond the loopback interface.
func (c Config) metricsWarnings() []string {
	host, _, err := net.SplitHostPort(c.Metrics.Listen)
	if c.Metrics.Listen == "" || err != nil || isLoopbackHost(host) {
		return nil
	}
	return []string{fmt.Sprintf("metrics.listen: %q is not a loopback address: anyone who reaches it reads the metrics (no authentication)", c.Metrics.Listen)}
}
