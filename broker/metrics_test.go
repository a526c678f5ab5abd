package broker

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oidc-broker/oidc-broker/providers"
)

// scrape reads the broker's metrics endpoint and returns every sample by
// its series as the text format prints it: name{label="value",...}, labels
// in alphabetical order.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: status %d", rec.Code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// expect checks samples: an exact value, or at least min when min is set.
func expect(t *testing.T, got map[string]float64, want map[string]float64, atLeast ...string) {
	t.Helper()
	for series, v := range want {
		g, ok := got[series]
		switch {
		case !ok:
			t.Errorf("no sample %s", series)
		case g != v:
			t.Errorf("%s = %v, want %v", series, g, v)
		}
	}
	for _, series := range atLeast {
		if got[series] < 1 {
			t.Errorf("%s = %v, want at least 1", series, got[series])
		}
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestMetricsAfterFlows: logins, refusals, forward-auth decisions, access
// refusals, the calls to the IdPs and the providers' state, with bounded
// labels (an unknown provider in a path is "unknown").
func TestMetricsAfterFlows(t *testing.T) {
	gone := providers.Config{ID: "gone", Issuer: "http://" + closedAddr(t), ClientID: "c", ClientSecret: "s"}
	e := newEnv(t, withRules("127.0.0.1"), withWrongSecret("beta"), withUserinfo("alpha", "always"),
		withConfig(func(c *Config) { c.Providers = append(c.Providers, gone) }))

	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	alice := newBrowser()
	cb := e.startLogin(alice, "alpha", "alice", "/")
	if resp := e.do(alice, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp := e.do(alice, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusBadRequest { // replayed
		t.Fatalf("replayed callback: %d", resp.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/oauth2/callback/no-such-idp-" + strings.Repeat("x", 40) + "?state=s"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown provider: %d", resp.StatusCode)
	}
	e.client = newBrowser()
	if resp := e.login("beta", "alice", "/"); resp.StatusCode != http.StatusBadGateway { // the IdP refuses the client
		t.Fatalf("beta with a wrong secret: %d", resp.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/oauth2/start/gone"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("start at an unreachable IdP: %d", resp.StatusCode)
	}

	for _, c := range []struct {
		client *http.Client
		uri    string
		want   int
	}{
		{alice, "/admin/x", http.StatusAccepted},
		{nil, "/x", http.StatusUnauthorized},
		{bob, "/admin/x", http.StatusForbidden},
		{nil, "/public/x", http.StatusAccepted},
	} {
		if resp := e.request(c.client, http.MethodGet, "/oauth2/auth", nginx(c.uri, "GET")); resp.StatusCode != c.want {
			t.Fatalf("forward-auth %s: %d, want %d", c.uri, resp.StatusCode, c.want)
		}
	}
	if resp := e.request(bob, http.MethodGet, "/admin/x", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("proxy /admin/ for bob: %d", resp.StatusCode)
	}

	m := scrape(t, e.server)
	expect(t, m, map[string]float64{
		`oidc_broker_logins_started_total{provider="alpha"}`:                                     2,
		`oidc_broker_logins_started_total{provider="beta"}`:                                      1,
		`oidc_broker_logins_succeeded_total{provider="alpha"}`:                                   2,
		`oidc_broker_logins_failed_total{provider="alpha",reason="unknown_state"}`:               1,
		`oidc_broker_logins_failed_total{provider="unknown",reason="unknown_provider"}`:          1,
		`oidc_broker_logins_failed_total{provider="beta",reason="client_rejected"}`:              1,
		`oidc_broker_logins_failed_total{provider="gone",reason="idp_unavailable"}`:              1,
		`oidc_broker_callback_duration_seconds_count{provider="alpha",result="succeeded"}`:       2,
		`oidc_broker_callback_duration_seconds_count{provider="alpha",result="failed"}`:          1,
		`oidc_broker_callback_duration_seconds_count{provider="unknown",result="failed"}`:        1,
		`oidc_broker_callback_duration_seconds_count{provider="beta",result="failed"}`:           1,
		`oidc_broker_forward_auth_decisions_total{decision="allowed"}`:                           2,
		`oidc_broker_forward_auth_decisions_total{decision="denied"}`:                            1,
		`oidc_broker_forward_auth_decisions_total{decision="unauthenticated"}`:                   1,
		`oidc_broker_forward_auth_decisions_total{decision="unavailable"}`:                       0,
		`oidc_broker_access_denied_total{via="forward_auth"}`:                                    1,
		`oidc_broker_access_denied_total{via="proxy"}`:                                           1,
		`oidc_broker_provider_up{provider="alpha"}`:                                              1,
		`oidc_broker_provider_up{provider="beta"}`:                                               1,
		`oidc_broker_provider_up{provider="gone"}`:                                               0,
		`oidc_broker_idp_request_errors_total{endpoint="token",kind="http_4xx",provider="beta"}`: 1,
	},
		`oidc_broker_idp_request_duration_seconds_count{endpoint="discovery",provider="alpha"}`,
		`oidc_broker_idp_request_duration_seconds_count{endpoint="token",provider="alpha"}`,
		`oidc_broker_idp_request_duration_seconds_count{endpoint="jwks",provider="alpha"}`,
		`oidc_broker_idp_request_duration_seconds_count{endpoint="userinfo",provider="alpha"}`,
		`oidc_broker_idp_request_errors_total{endpoint="discovery",kind="network",provider="gone"}`,
		`go_goroutines`,
	)
	for series := range m {
		if strings.Contains(series, "no-such-idp") || strings.Contains(series, `reason="other"`) {
			t.Errorf("unbounded or unclassified label: %s", series)
		}
		if strings.Contains(series, `provider="alpha"`) && strings.HasPrefix(series, "oidc_broker_idp_request_errors_total") {
			t.Errorf("alpha answered every call, yet %s", series)
		}
	}

	// A reload keeps the counts, and provider_up follows the new providers.
	cfg := runningConfig(e)
	cfg.Providers = cfg.Providers[1:] // alpha, beta; gone is removed
	if cfg.Providers[0].ID != "alpha" {
		t.Fatalf("providers %v", cfg.Providers)
	}
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	e.client = newBrowser()
	e.login("alpha", "carol", "/")
	m = scrape(t, e.server)
	expect(t, m, map[string]float64{`oidc_broker_logins_succeeded_total{provider="alpha"}`: 3})
	if _, ok := m[`oidc_broker_provider_up{provider="gone"}`]; ok {
		t.Error("a removed provider is still reported")
	}
}

// TestMetricsRegisterer: an embedding program's registry receives the
// broker's collectors; the same registry cannot take a second broker.
func TestMetricsRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Config{Providers: []providers.Config{{ID: "x", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s"}}}
	s, err := New(cfg, Options{Metrics: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/callback/x", nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("callback without state: %d", rec.Code)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range families {
		if f.GetName() == "oidc_broker_logins_failed_total" {
			found = len(f.GetMetric()) == 1 && f.GetMetric()[0].GetCounter().GetValue() == 1
		}
		if strings.HasPrefix(f.GetName(), "go_") {
			t.Errorf("the broker registered %s with the program's registry", f.GetName())
		}
	}
	if !found {
		t.Error("the program's registry has no count of the failed login")
	}
	if _, err := New(cfg, Options{Metrics: reg, Logger: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("a second broker on the same registry: %v", err)
	}
	// The failed second broker left nothing behind, and Close takes the
	// first one's collectors out: a new broker can register.
	if n := len(gatherNames(t, reg)); n == 0 {
		t.Fatal("the first broker's collectors are gone while it runs")
	}
	s.Close()
	if names := gatherNames(t, reg); len(names) != 0 {
		t.Errorf("after Close the registry still has %v", names)
	}
	s2, err := New(cfg, Options{Metrics: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("a broker after Close: %v", err)
	}
	s2.Close()
}

// TestMetricsRegistererConflict: when the program's registry refuses one of
// the collectors (a name it already has), New fails and leaves none of the
// others registered there.
func TestMetricsRegistererConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	theirs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "oidc_broker_session_store_errors_total", Help: "not the broker's"}, []string{"x"})
	reg.MustRegister(theirs)
	theirs.WithLabelValues("y").Inc()
	cfg := Config{Providers: []providers.Config{{ID: "x", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s"}}}
	if _, err := New(cfg, Options{Metrics: reg, Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("New registered a collector under a name the registry already had")
	}
	if names := gatherNames(t, reg); !slices.Equal(names, []string{"oidc_broker_session_store_errors_total"}) {
		t.Errorf("after the failed New the registry has %v", names)
	}
}

// gatherNames lists the metric families reg has samples of.
func gatherNames(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	return names
}

func TestMetricsConfig(t *testing.T) {
	base := func(f func(*Config)) Config {
		c := Config{Providers: []providers.Config{{ID: "x", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s"}}}
		f(&c)
		return c
	}
	for _, c := range []struct {
		name, listen, main, want string
	}{
		{"off", "", "", ""},
		{"loopback", "127.0.0.1:9180", "", ""},
		{"any port", "127.0.0.1:0", "", ""},
		{"no port", "127.0.0.1", "", `metrics.listen: "127.0.0.1" is not host:port`},
		{"bad port", "127.0.0.1:http", "", `metrics.listen: "127.0.0.1:http": the port "http" is not a number from 1 to 65535`},
		{"port too large", ":70000", "", `metrics.listen: ":70000": the port "70000" is not a number from 1 to 65535`},
		{"the default listen", DefaultListen, "", "metrics.listen: \"127.0.0.1:4180\" is the address of listen"},
		{"the listen", "0.0.0.0:8080", "0.0.0.0:8080", "metrics.listen: \"0.0.0.0:8080\" is the address of listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := base(func(cfg *Config) { cfg.Metrics.Listen, cfg.Listen = c.listen, c.main }).Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	w := base(func(c *Config) { c.Metrics.Listen = "0.0.0.0:9180" }).Warnings()
	if !strings.Contains(strings.Join(w, "\n"), "metrics.listen: \"0.0.0.0:9180\" is not a loopback address") {
		t.Errorf("warnings %q", w)
	}
	if w := base(func(c *Config) { c.Metrics.Listen = "[::1]:9180" }).Warnings(); len(w) != 0 {
		t.Errorf("loopback: warnings %q", w)
	}
}
