package broker

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Prometheus metrics (docs/observability.md): the collectors are package
// metrics; the broker counts what happens to its requests.

// MetricsConfig configures the metrics endpoint of the binary.
type MetricsConfig struct {
	// Listen is the address of a separate HTTP server that serves the
	// metrics at /metrics, such as "127.0.0.1:9180". Default "" (off). The
	// endpoint has no authentication: bind it where only the monitoring
	// system can reach it.
	Listen string `yaml:"listen"`
}

// MetricsHandler serves the broker's metrics in the Prometheus text format,
// with those of the Go runtime and the process. The binary serves it on
// metrics.listen; an embedding program mounts it where it likes (or gives
// New its own registry in Options.Metrics).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

// newestRegistry is the provider registry of the newest generation, nil
// before New has finished.
func (s *Server) newestRegistry() *providers.Registry {
	if g := s.live.Load(); g != nil {
		return g.registry
	}
	return nil
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
			case audit.LoginSucceeded:
				result = "succeeded"
			case audit.LoginFailed:
				result = "failed"
			}
		}
		s.metrics.Callback.WithLabelValues(s.providerLabel(r.PathValue("provider")), result).Observe(time.Since(start).Seconds())
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
	if p := configcheck.ListenProblem(l); p != "" {
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
