package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// discoveryServer serves a discovery document naming issuer (srv.URL when
// issuer is "") with body replaced by raw when raw is set.
func discoveryServer(t *testing.T, issuerSuffix, raw string, delay time.Duration) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if raw != "" {
			_, _ = io.WriteString(w, raw)
			return
		}
		iss := srv.URL + issuerSuffix
		_, _ = io.WriteString(w, `{"issuer":"`+iss+`","authorization_endpoint":"`+srv.URL+`/auth","token_endpoint":"`+srv.URL+`/token","jwks_uri":"`+srv.URL+`/keys"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscoveryMisbehaviour(t *testing.T) {
	cases := []struct {
		name       string
		raw        string
		suffix     string // appended to the issuer in the document
		cfgSuffix  string // appended to the configured issuer
		delay      time.Duration
		wantUsable bool
	}{
		{name: "well-formed", wantUsable: true},
		{name: "issuer with a trailing slash on both sides", suffix: "/", cfgSuffix: "/", wantUsable: true},
		{name: "document adds a trailing slash", suffix: "/"},
		{name: "configuration adds a trailing slash", cfgSuffix: "/"},
		{name: "garbage", raw: "<html>this is not JSON</html>"},
		{name: "empty object", raw: "{}"},
		{name: "slow", delay: 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := discoveryServer(t, c.suffix, c.raw, c.delay)
			p, err := testTypes.Open(Config{ID: "x", Issuer: srv.URL + c.cfgSuffix, ClientID: "c", ClientSecret: "s"},
				Options{Logger: quiet, DiscoveryTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = p.AuthCodeURL(context.Background(), AuthRequest{State: "s", RedirectURI: "http://127.0.0.1/cb"})
			if c.wantUsable {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want *UnavailableError", err)
			}
			if time.Since(start) > time.Second {
				t.Errorf("a failing IdP held the request for %v", time.Since(start))
			}
		})
	}
}

// TestOneSlowIdPDoesNotBlockAnother: discovery of a hanging IdP runs while
// another provider serves logins at once.
func TestOneSlowIdPDoesNotBlockAnother(t *testing.T) {
	slow := discoveryServer(t, "", "", 5*time.Second)
	fast := discoveryServer(t, "", "", 0)
	reg, err := NewRegistry(testTypes, []Config{
		{ID: "slow", Issuer: slow.URL, ClientID: "c", ClientSecret: "s"},
		{ID: "fast", Issuer: fast.URL, ClientID: "c", ClientSecret: "s"},
	}, Options{Logger: quiet, DiscoveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Get("slow")
	f, _ := reg.Get("fast")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = s.AuthCodeURL(ctx, AuthRequest{})
	}()
	_ = s.Status() // starts nothing new: one attempt at a time
	start := time.Now()
	if _, err := f.AuthCodeURL(context.Background(), AuthRequest{RedirectURI: "http://127.0.0.1/cb"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the fast IdP waited %v behind the slow one", d)
	}
	// A request that gives up early does not wait for the slow discovery.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.AuthCodeURL(ctx, AuthRequest{}); err == nil {
		t.Error("slow IdP answered")
	}
}

// TestIssParameterIsComparedExactly: RFC 9207 §2.4 compares the iss
// parameter with the issuer by simple string comparison: no trailing-slash
// or case normalisation.
func TestIssParameterIsComparedExactly(t *testing.T) {
	srv := discoveryServer(t, "", "", 0)
	p, _ := testTypes.Open(Config{ID: "x", Issuer: srv.URL, ClientID: "c", ClientSecret: "s"}, Options{Logger: quiet})
	for _, iss := range []string{srv.URL + "/", strings.ToUpper(srv.URL), srv.URL + "/x", ""} {
		_, err := p.Exchange(context.Background(), Callback{Params: url.Values{"iss": {iss}, "code": {"c"}, "state": {"s"}}})
		if !errors.Is(err, ErrIssuerMismatch) {
			t.Errorf("iss=%q: err = %v, want ErrIssuerMismatch", iss, err)
		}
	}
}

// TestStatusWarmsBoundedly: the sign-in page asks every provider's status;
// the background discoveries that starts are bounded per registry.
func TestStatusWarmsBoundedly(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	defer close(release)
	cfgs := make([]Config, 50)
	for i := range cfgs {
		cfgs[i] = Config{ID: fmt.Sprintf("p%d", i), Issuer: srv.URL + fmt.Sprintf("/t%d", i), ClientID: "c", ClientSecret: "s"}
	}
	reg, err := NewRegistry(testTypes, cfgs, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, p := range reg.All() {
			if !p.Status().Available {
				t.Fatal("an undiscovered provider is shown unavailable")
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for inFlight.Load() < maxWarming && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := peak.Load(); got != maxWarming {
		t.Errorf("%d discoveries in flight at once, want %d", got, maxWarming)
	}
}

// TestDiscoveryBehindRedirect: an issuer whose discovery URL redirects
// (to another path, as some deployments do) is usable, and what the broker
// reads from the document besides zitadel (here RFC 9207's flag) comes
// from the document the redirect led to.
func TestDiscoveryBehindRedirect(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			http.Redirect(w, r, "/config/openid.json", http.StatusFound)
		case "/config/openid.json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"issuer":"`+srv.URL+`","authorization_endpoint":"`+srv.URL+`/auth","token_endpoint":"`+srv.URL+
				`/token","jwks_uri":"`+srv.URL+`/keys","authorization_response_iss_parameter_supported":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p, err := testTypes.Open(Config{ID: "x", Issuer: srv.URL, ClientID: "c", ClientSecret: "s"}, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AuthCodeURL(context.Background(), AuthRequest{State: "s", RedirectURI: "http://127.0.0.1/cb"}); err != nil {
		t.Fatalf("discovery behind a redirect: %v", err)
	}
	c, _ := p.(*oidcProvider).discovered(context.Background())
	if c == nil || !c.issParameter {
		t.Error("the RFC 9207 flag was not read from the document the redirect led to")
	}
	// check --online reads the document the same way.
	r := testTypes.Probe(context.Background(), Config{ID: "x", Issuer: srv.URL, ClientID: "c", ClientSecret: "s"}, nil)
	for _, check := range []string{checkDiscovery, checkIss, checkIssParam} {
		i := slices.IndexFunc(r.Findings, func(f Finding) bool { return f.Check == check })
		if i < 0 || r.Findings[i].Severity != SeverityOK {
			t.Errorf("check --online behind a redirect, %s: %+v", check, r.Findings)
		}
	}
}
