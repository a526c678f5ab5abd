// Package metrics is the broker's Prometheus collectors
// (docs/observability.md): logins, sign-outs, refusals and access
// decisions, the identity providers' HTTP calls and whether each provider
// is up, and the session store's operations, timed and their failures
// counted (ObserveStore, ObserveBackend). Every label has a bounded set of
// values: provider ids from the configuration ("unknown" for any other id
// a request names), reasons and results from fixed lists; never a user, a
// path or an error's text.
package metrics

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Collectors are the broker's collectors. A broker keeps them for the
// whole process: every generation of its configuration shares one value,
// so counters never restart, and nothing in them follows the configuration
// (provider_up reads the newest registry at scrape time). The counters of
// audit events are exported: the broker counts each event it logs.
type Collectors struct {
	gatherer prometheus.Gatherer // what MetricsHandler serves
	handler  http.Handler
	// also is the embedding program's registry (broker.Options.Metrics),
	// which holds own until Unregister.
	also       prometheus.Registerer
	own        []prometheus.Collector
	unregistry sync.Once

	LoginsStarted     *prometheus.CounterVec   // provider
	LoginsSucceeded   *prometheus.CounterVec   // provider
	LoginsFailed      *prometheus.CounterVec   // provider, reason
	Callback          *prometheus.HistogramVec // provider, result
	Logouts           *prometheus.CounterVec   // provider, kind
	Refusals          *prometheus.CounterVec   // event, reason
	AccessDenied      *prometheus.CounterVec   // via
	SessionsRefreshed *prometheus.CounterVec   // provider
	SessionsEnded     *prometheus.CounterVec   // provider, reason

	forwardAuth   *prometheus.CounterVec   // decision
	idpDuration   *prometheus.HistogramVec // provider, endpoint
	idpErrors     *prometheus.CounterVec   // provider, endpoint, kind
	storeDuration *prometheus.HistogramVec // op
	storeErrors   *prometheus.CounterVec   // op

	// The series of every request, resolved once.
	decisions map[string]prometheus.Counter // forwardAuth by decision
	storeOps  map[string]storeOp            // by op
	journal   atomic.Pointer[func() int]    // session store's unconfirmed writes (JournalEntries)
}

// storeOp is the series of one session store operation.
type storeOp struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// The operations on session data (store.go), whose series exist
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

// Unregister takes the collectors out of the embedding program's registry,
// so that another Server can register there (New failed, or Close).
func (m *Collectors) Unregister() {
	if m == nil || m.also == nil {
		return
	}
	m.unregistry.Do(func() {
		for _, c := range m.own {
			m.also.Unregister(c)
		}
	})
}

// New makes the collectors and registers them with a registry of
// their own, which Handler serves with the Go runtime's and the
// process's metrics, and with also when it is not nil (an embedding
// program's registry). registry returns the newest provider registry, read
// at each scrape.
func New(also prometheus.Registerer, registry func() *providers.Registry) (*Collectors, error) {
	const ns = "oidc_broker"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m := &Collectors{
		LoginsStarted:   counter("logins_started_total", "Logins sent to an identity provider (or its password form).", "provider"),
		LoginsSucceeded: counter("logins_succeeded_total", "Logins that created a session.", "provider"),
		LoginsFailed:    counter("logins_failed_total", "Logins refused or failed, by reason.", "provider", "reason"),
		Callback: histogram("callback_duration_seconds", "Time to answer an identity provider's callback, by result (succeeded, failed, error).",
			prometheus.DefBuckets, "provider", "result"),
		Logouts: counter("logouts_total", "Sign-outs: local (the broker's session), idp (back from the IdP's sign-out), backchannel (a logout token).",
			"provider", "kind"),
		Refusals:          counter("refusals_total", "Refused sign-outs, back-channel logouts and HTTP Basic credentials, by reason.", "event", "reason"),
		AccessDenied:      counter("access_denied_total", "Signed-in users refused by the access rules (403), by where: proxy or forward_auth.", "via"),
		forwardAuth:       counter("forward_auth_decisions_total", "Forward-auth answers: allowed, denied, unauthenticated, unavailable.", "decision"),
		SessionsRefreshed: counter("sessions_refreshed_total", "Sessions whose tokens were renewed with a refresh token.", "provider"),
		SessionsEnded:     counter("sessions_ended_total", "Sessions ended because their login could not be renewed, by reason.", "provider", "reason"),
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
	journal := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "session_store_journal_entries",
		Help: "Session deletions and revocation marks the Redis replicas have not confirmed yet, kept to be written again (docs/sessions.md#high-availability)."},
		func() float64 {
			if f := m.journal.Load(); f != nil {
				return float64((*f)())
			}
			return 0
		})
	up := &providersUp{registry: registry, desc: prometheus.NewDesc(ns+"_provider_up",
		"Whether an identity provider can be used (1) or is unreachable (0), as the sign-in page shows it.", []string{"provider"}, nil)}
	own := []prometheus.Collector{m.LoginsStarted, m.LoginsSucceeded, m.LoginsFailed, m.Callback, m.Logouts, m.Refusals,
		m.AccessDenied, m.forwardAuth, m.SessionsRefreshed, m.SessionsEnded, m.idpDuration, m.idpErrors,
		m.storeDuration, m.storeErrors, journal, up}
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
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m.also, m.own = also, own
	m.gatherer = reg
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m, nil
}

// JournalEntries makes oidc_broker_session_store_journal_entries report
// entries(): the Redis store's writes waiting for replicas to confirm them.
func (m *Collectors) JournalEntries(entries func() int) { m.journal.Store(&entries) }

// Handler serves the collectors in the Prometheus text format, with those
// of the Go runtime and the process.
func (m *Collectors) Handler() http.Handler { return m.handler }

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

// ObserveIdP records one request to an identity provider
// (providers.Options.Observe).
func (m *Collectors) ObserveIdP(c providers.IdPCall) {
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

// CountForwardAuth counts a forward-auth answer: the access decision, or
// unavailable when the session store failed (storeFailed) and the route is
// not public.
func (m *Collectors) CountForwardAuth(d access.Decision, storeFailed bool) {
	v := decisionUnauthenticated
	switch {
	case storeFailed && d != access.Public:
		v = decisionUnavailable
	case d == access.Public || d == access.Allowed:
		v = decisionAllowed
	case d == access.Forbidden:
		v = decisionDenied
	}
	m.decisions[v].Inc()
}
