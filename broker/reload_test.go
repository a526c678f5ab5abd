package broker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runningConfig returns a copy of e's running configuration that a test
// may change without touching the running one.
func runningConfig(e *env) Config {
	cfg := e.server.live.Load().cfg
	cfg.Providers = slices.Clone(cfg.Providers)
	cfg.Routes = slices.Clone(cfg.Routes)
	return cfg
}

func TestReloadKeepsSessionsAndAppliesNewRules(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	if code, _ := e.appView(e.client, "/", nil); code != http.StatusOK {
		t.Fatalf("before reload: app status %d", code)
	}
	alpha, _ := e.server.Registry().Get("alpha")
	beta, _ := e.server.Registry().Get("beta")

	cfg := runningConfig(e)
	cfg.Default = AccessRule{Groups: GroupCondition{OneOf: []string{"finance"}}}
	cfg.Routes = append(cfg.Routes, Route{Path: "/status", AccessRule: AccessRule{Public: true}})
	cfg.Providers[1].Name = "Beta Corp"
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}

	if resp := e.get(e.broker.URL + "/oauth2/userinfo"); resp.StatusCode != http.StatusOK || !strings.Contains(body(resp), "alice") {
		t.Errorf("the session did not survive the reload: userinfo status %d", resp.StatusCode)
	}
	if code, _ := e.appView(e.client, "/", nil); code != http.StatusForbidden {
		t.Errorf("new default rule (finance only): alice gets %d, want 403", code)
	}
	if code, _ := e.appView(newBrowser(), "/status", nil); code != http.StatusOK {
		t.Errorf("new public route: anonymous gets %d, want 200", code)
	}
	if got, _ := e.server.Registry().Get("alpha"); got != alpha {
		t.Error("alpha's settings did not change, yet it was opened anew (its discovery is lost)")
	}
	if got, _ := e.server.Registry().Get("beta"); got == beta || got.Name() != "Beta Corp" {
		t.Errorf("beta changed but was carried over (name %q)", got.Name())
	}
	if page := body(e.get(e.broker.URL + "/oauth2/sign_in")); !strings.Contains(page, "Beta Corp") {
		t.Error("the sign-in page does not show the new provider name")
	}
	if !strings.Contains(e.logs.String(), `msg="configuration reloaded" providers=2 routes=1`) {
		t.Errorf("no reload line in the log:\n%s", e.logs)
	}
}

func TestReloadRefusesABadConfigAndKeepsTheOld(t *testing.T) {
	e := newEnv(t)
	before := e.server.live.Load()
	cfg := runningConfig(e)
	cfg.Providers[1].Issuer = ""
	cfg.Routes = []Route{{Path: "no-slash"}}
	err := e.server.Reload(cfg)
	if err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	for _, want := range []string{"providers[1].issuer", "routes[0].path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if e.server.live.Load() != before {
		t.Fatal("a refused reload replaced the running configuration")
	}
	if resp := e.login("beta", "bob", "/"); resp.StatusCode != http.StatusFound {
		t.Errorf("login through the kept configuration: status %d", resp.StatusCode)
	}
}

func TestReloadLeavesRestartOnlySettings(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	cfg := runningConfig(e)
	cfg.Session.CookieName = "renamed"
	cfg.Listen = "127.0.0.1:1"
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !e.signedIn(e.client) {
		t.Error("the session cookie's name changed on reload: every user is signed out")
	}
	for _, want := range []string{
		`msg="configuration reload: listen changed; the change takes effect at the next restart"`,
		`msg="configuration reload: session changed; the change takes effect at the next restart"`,
	} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if got := e.server.live.Load().cfg.Session.CookieName; got != "" {
		t.Errorf("running session.cookie_name %q, want the old (default)", got)
	}
}

// A request in flight during a reload completes (closing the replaced
// generation's idle upstream connections does not cut it); the next one
// gets the new upstream.
func TestReloadInFlightRequestFinishesOnItsGeneration(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	oldApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "old app")
	}))
	t.Cleanup(oldApp.Close)
	newApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "new app")
	}))
	t.Cleanup(newApp.Close)

	e := newEnv(t, withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: oldApp.URL}}
		c.Default = AccessRule{Public: true}
	}))
	inFlight := make(chan string, 1)
	go func() {
		resp, err := http.Get(e.broker.URL + "/")
		if err != nil {
			inFlight <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inFlight <- string(b)
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the old app")
	}
	cfg := runningConfig(e)
	cfg.Upstreams = []UpstreamConfig{{Path: "/", URL: newApp.URL}}
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := body(e.get(e.broker.URL + "/")); got != "new app" {
		t.Errorf("after reload: %q, want the new app", got)
	}
	close(release)
	if got := <-inFlight; got != "old app" {
		t.Errorf("the request in flight got %q, want the old app's answer", got)
	}
}

// Handlers behind Protect follow the new rules too.
func TestReloadAppliesToEmbeddedHandlers(t *testing.T) {
	e := newEnv(t, withConfig(embeddedRules), withMount(embeddedMux))
	if got := body(e.get(e.broker.URL + "/open/x")); !strings.HasPrefix(got, "anonymous") {
		t.Fatalf("before reload: %q", got)
	}
	cfg := runningConfig(e)
	cfg.Routes = nil
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if resp := e.get(e.broker.URL + "/open/x"); resp.StatusCode != http.StatusFound {
		t.Errorf("/open/ is no longer public, yet anonymous gets %d", resp.StatusCode)
	}
}

// TestReloadEndsSessionsOfARemovedProvider: a reload that removes a
// provider signs its users out at their next request (the session is
// deleted and revoked, the audit log and the metric say why); the other
// providers' sessions go on.
func TestReloadEndsSessionsOfARemovedProvider(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	bob := newBrowser()
	cb := e.startLogin(bob, "beta", "bob", "/")
	e.do(bob, http.MethodGet, cb.String(), nil)
	for name, c := range map[string]*http.Client{"alice": e.client, "bob": bob} {
		if code, _ := e.appView(c, "/", nil); code != http.StatusOK {
			t.Fatalf("before the reload: %s gets %d", name, code)
		}
	}

	full := runningConfig(e)
	cfg := runningConfig(e)
	cfg.Providers = cfg.Providers[:1] // beta removed
	if err := e.server.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.appView(e.client, "/", nil); code != http.StatusOK {
		t.Errorf("alpha's user after the reload: %d, want 200", code)
	}
	if resp := e.do(bob, http.MethodGet, e.broker.URL+"/oauth2/userinfo", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("beta's user after beta was removed: userinfo %d, want 401", resp.StatusCode)
	}
	if logs := e.logs.settled("its provider was removed"); !regexp.MustCompile(`msg="session ended".*provider=beta.*its provider was removed`).MatchString(logs) {
		t.Errorf("no audit line for the ended session:\n%s", e.logs)
	}
	expect(t, scrape(t, e.server), map[string]float64{
		`oidc_broker_sessions_ended_total{provider="unknown",reason="provider_removed"}`: 1,
	})

	// The session is gone for good: adding beta back does not revive it.
	if err := e.server.Reload(full); err != nil {
		t.Fatal(err)
	}
	if resp := e.do(bob, http.MethodGet, e.broker.URL+"/oauth2/userinfo", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("beta re-added: the ended session came back (userinfo %d)", resp.StatusCode)
	}
}
