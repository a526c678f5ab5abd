package broker

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/readiness"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/testclock"
	"github.com/oidc-broker/oidc-broker/providers"
)

func TestReadinessConfig(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	base := "providers: [{id: a, issuer: 'https://idp.example', client_id: c, client_secret: s}]\n"
	for _, c := range []struct{ yaml, want string }{
		{"readiness: {require_idp: true}\n", ""},
		{"readiness: {require_idp: true, idp_check_interval: 1m}\n", ""},
		{"readiness: {require_idp: true, idp_check_interval: 500ms}\n", "line 2: readiness.idp_check_interval: 500ms must be at least 1s"},
		{"readiness: {require_idp: true, idp_check_interval: -5s}\n", "readiness.idp_check_interval: -5s must be at least 1s"},
		{"readiness: {idp_check_interval: 10s}\n", "readiness.idp_check_interval: is only used with readiness.require_idp: true"},
		{"readiness: {require_idps: true}\n", "line 2: readiness.require_idps: unknown key; did you mean \"require_idp\"?"},
	} {
		cfg, err := ParseConfig("broker.yaml", []byte(base+c.yaml), env)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.want == "" && !cfg.Readiness.RequireIdP:
			t.Errorf("%q: require_idp not read", c.yaml)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: err = %v, want %q", c.yaml, err, c.want)
		}
	}
	if r := readiness.New(ReadinessConfig{}, nil, time.Now, nil); r != nil || r.Check(context.Background()) != nil {
		t.Error("without require_idp, readiness must require nothing")
	}
}

// TestReadyzRequiresAnIdP: the broker's /readyz with real IdPs, up then
// down; /healthz does not care.
func TestReadyzRequiresAnIdP(t *testing.T) {
	clk := testclock.At(time.Now())
	e := newEnv(t, withClock(clk.Now), withConfig(func(c *Config) { c.Readiness = ReadinessConfig{RequireIdP: true} }))
	readyz := func() (int, string) {
		resp := e.get(e.broker.URL + "/readyz")
		return resp.StatusCode, body(resp)
	}
	if code, text := readyz(); code != http.StatusOK || text != "ready\n" {
		t.Fatalf("IdPs up: %d %q", code, text)
	}
	for _, idp := range e.idps {
		idp.srv.Close()
	}
	if code, _ := readyz(); code != http.StatusOK {
		t.Errorf("within the interval: %d", code)
	}
	clk.Add(DefaultIdPCheckInterval + time.Second)
	if code, text := readyz(); code != http.StatusServiceUnavailable || text != "no identity provider reachable\n" {
		t.Errorf("IdPs down: %d %q", code, text)
	}
	if resp := e.get(e.broker.URL + "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	e.logs.settled("readiness: no identity provider is reachable") // logged as the look ends, maybe after the answer
	if logs := e.logs.settled("providers: alpha: discovery:"); !strings.Contains(logs, "readiness: no identity provider is reachable") || !strings.Contains(logs, "providers: alpha: discovery:") {
		t.Errorf("logs:\n%s", logs)
	}
}

// TestReadyzWithProvidersFromElsewhere: an embedding program's providers
// are judged by their Status.
func TestReadyzWithProvidersFromElsewhere(t *testing.T) {
	cfg := Config{Providers: []providers.Config{providerConfig("a"), providerConfig("b")}, Readiness: ReadinessConfig{RequireIdP: true}}
	if _, h := signInServer(t, cfg, "a"); fetch(h, "/readyz").Code != http.StatusOK {
		t.Error("one provider available: not ready")
	}
	if _, h := signInServer(t, cfg, "a", "b"); fetch(h, "/readyz").Code != http.StatusServiceUnavailable {
		t.Error("no provider available: ready")
	}
}
