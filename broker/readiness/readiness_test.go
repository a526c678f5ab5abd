package readiness

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/testclock"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
)

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

func readinessFor(t *testing.T, clk *testclock.Clock, cfgs ...providers.Config) *IdPs {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := providers.NewRegistry(all.Types(), cfgs, providers.Options{Logger: quiet, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{RequireIdP: true, IdPCheckInterval: 10 * time.Second}, reg, clk.Now, quiet)
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
		if err := r.Check(ctx); err != nil {
			t.Fatalf("IdP up: %v", err)
		}
	}
	if n := idp.hits.Load(); n != 1 {
		t.Errorf("%d requests for 5 checks within the interval, want 1", n)
	}

	idp.down.Store(true)
	if err := r.Check(ctx); err != nil {
		t.Errorf("within the interval the last look stands: %v", err)
	}
	clk.Add(11 * time.Second)
	for range 3 {
		if err := r.Check(ctx); !errors.Is(err, ErrNoIdP) {
			t.Fatalf("IdP down: %v", err)
		}
	}
	if n := idp.hits.Load(); n != 2 {
		t.Errorf("%d requests after two looks, want 2", n)
	}

	idp.down.Store(false)
	clk.Add(11 * time.Second)
	if err := r.Check(ctx); err != nil {
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
	if err := r.Check(ctx); !errors.Is(err, ErrPending) {
		t.Errorf("first check: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("check took %v", d)
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err = r.Check(short)
		cancel()
		if !errors.Is(err, ErrPending) {
			break
		}
	}
	if !errors.Is(err, ErrNoIdP) {
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
	if err := r.Check(context.Background()); err != nil {
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
	if err := r.Check(context.Background()); !errors.Is(err, ErrNoIdP) {
		t.Errorf("every provider in back-off: %v", err)
	}
	if n := idp.hits.Load(); n != before {
		t.Errorf("%d requests to an IdP in back-off, want none", n-before)
	}
}

// TestIdPReadinessCarriedOverAReload: the readiness of a new generation
// answers with the last look of the one it replaced while its own first
// look is still running; without that, "not checked yet".
func TestIdPReadinessCarriedOverAReload(t *testing.T) {
	idp := newSwitchableIdP(t)
	clk := testclock.At(time.Unix(1_000_000, 0))
	prev := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	if err := prev.Check(context.Background()); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	idp.hang.Store(true) // the new generation's look does not end
	check := func(r *IdPs) error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return r.Check(ctx)
	}
	next := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	next.CarryOver(prev)
	if err := check(next); err != nil {
		t.Errorf("after the reload, with the look still running: %v, want the last answer (ready)", err)
	}
	control := readinessFor(t, clk, oidcConfig("idp", idp.srv.URL))
	if err := check(control); !errors.Is(err, ErrPending) {
		t.Errorf("without the carried answer: %v, want %v", err, ErrPending)
	}
	if hits := idp.hits.Load(); hits < 3 {
		t.Errorf("%d requests: the new generations did not look at the IdP themselves", hits)
	}
}
