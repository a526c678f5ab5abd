package broker

import (
	"context"
	"errors"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/testclock"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
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
		{"readiness: {require_idps: true}\n", "line 2: field require_idps not found"},
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
	if r := newIDPReadiness(ReadinessConfig{}, nil, time.Now, nil); r != nil || r.check(context.Background()) != nil {
		t.Error("without require_idp, readiness must require nothing")
	}
}

// switchableIdP is a discovery document that can be taken down and brought
// back; it counts the requests it gets.
type switchableIdP struct {
	srv  *httptest.Server
	down atomic.Bool
	hang atomic.Bool
	hits atomic.Int32
}

func newSwitchableIdP(t *testing.T) *switchableIdP {
	t.Helper()
	s := &switchableIdP{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.hang.Load() {
			<-r.Context().Done()
			return
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"issuer":"`+s.srv.URL+`","authorization_endpoint":"`+s.srv.URL+`/auth","token_endpoint":"`+
			s.srv.URL+`/token","jwks_uri":"`+s.srv.URL+`/keys"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func readinessFor(t *testing.T, clk *testclock.Clock, cfgs ...providers.Config) *idpReadiness {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := providers.NewRegistry(all.Types(), cfgs, providers.Options{Logger: quiet, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return newIDPReadiness(ReadinessConfig{RequireIdP: true, IdPCheckInterval: 10 * time.Second}, reg, clk.Now, quiet)
}

func oidcConfig(id, issuer string) providers.Config {
	return providers.Config{ID: id, Issuer: issuer, ClientID: "broker", ClientSecret: "secret"}
}

// TestIdPReadinessUpThenDown: an IdP that answers makes the broker ready;
// once it is down the next look (not before the interval) says so, and
// the same when it is back. One request per look.
func TestIdPReadinessUpThenDown(t *testing.T) {
	idp := newSwitchableIdP(t)
	clk := testclock.At(time.Unix(1_000_000, 0))
	r := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	ctx := context.Background()
	for range 5 {
		if err := r.check(ctx); err != nil {
			t.Fatalf("IdP up: %v", err)
		}
	}
	if n := idp.hits.Load(); n != 1 {
		t.Errorf("%d requests for 5 checks within the interval, want 1", n)
	}

	idp.down.Store(true)
	if err := r.check(ctx); err != nil {
		t.Errorf("within the interval the last look stands: %v", err)
	}
	clk.Add(11 * time.Second)
	for range 3 {
		if err := r.check(ctx); !errors.Is(err, errNoIdP) {
			t.Fatalf("IdP down: %v", err)
		}
	}
	if n := idp.hits.Load(); n != 2 {
		t.Errorf("%d requests after two looks, want 2", n)
	}

	idp.down.Store(false)
	clk.Add(11 * time.Second)
	if err := r.check(ctx); err != nil {
		t.Errorf("IdP back: %v", err)
	}
}

// TestIdPReadinessNeverBlocksLong: a hanging IdP holds /readyz only as long
// as its context; the look goes on and its answer is used afterwards.
func TestIdPReadinessNeverBlocksLong(t *testing.T) {
	idp := newSwitchableIdP(t)
	idp.hang.Store(true)
	clk := testclock.At(time.Unix(1_000_000, 0))
	r := readinessFor(t, clk, oidcConfig("slow", idp.srv.URL))
	r.reachTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.check(ctx); !errors.Is(err, errIdPPending) {
		t.Errorf("first check: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("check took %v", d)
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err = r.check(short)
		cancel()
		if !errors.Is(err, errIdPPending) {
			break
		}
	}
	if !errors.Is(err, errNoIdP) {
		t.Errorf("after the look: %v", err)
	}
	if n := idp.hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestIdPReadinessFromWhatTheRegistryKnows: a local provider is reachable
// without a request; providers whose discovery just failed are not asked
// again.
func TestIdPReadinessFromWhatTheRegistryKnows(t *testing.T) {
	idp := newSwitchableIdP(t)
	idp.down.Store(true)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := testclock.At(time.Unix(1_000_000, 0))
	r := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL), providers.Config{ID: "staff", Type: providers.TypeLocal, HtpasswdFile: htpasswd})
	if err := r.check(context.Background()); err != nil {
		t.Errorf("with a local provider: %v", err)
	}
	if n := idp.hits.Load(); n != 0 {
		t.Errorf("%d requests to the IdP, want none", n)
	}

	r = readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	p, _ := r.registry.Get("idp")
	if _, err := p.AuthCodeURL(context.Background(), providers.AuthRequest{RedirectURI: "http://127.0.0.1/cb"}); err == nil {
		t.Fatal("a down IdP was discovered")
	}
	before := idp.hits.Load()
	if err := r.check(context.Background()); !errors.Is(err, errNoIdP) {
		t.Errorf("every provider in back-off: %v", err)
	}
	if n := idp.hits.Load(); n != before {
		t.Errorf("%d requests to an IdP in back-off, want none", n-before)
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

// TestIdPReadinessCarriedOverAReload: the readiness of a new generation
// answers with the last look of the one it replaced while its own first
// look is still running; without that, "not checked yet".
func TestIdPReadinessCarriedOverAReload(t *testing.T) {
	idp := newSwitchableIdP(t)
	clk := testclock.At(time.Unix(1_000_000, 0))
	prev := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	if err := prev.check(context.Background()); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	idp.hang.Store(true) // the new generation's look does not end
	check := func(r *idpReadiness) error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return r.check(ctx)
	}
	next := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	next.carryOver(prev)
	if err := check(next); err != nil {
		t.Errorf("after the reload, with the look still running: %v, want the last answer (ready)", err)
	}
	control := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	if err := check(control); !errors.Is(err, errIdPPending) {
		t.Errorf("without the carried answer: %v, want %v", err, errIdPPending)
	}
	if hits := idp.hits.Load(); hits < 3 {
		t.Errorf("%d requests: the new generations did not look at the IdP themselves", hits)
	}
}
