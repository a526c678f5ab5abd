package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/demologin"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
)

// stepUpRoutes: /recent/ needs a sign-in of the last five minutes, /mfa/
// the acr "mfa", anything else any signed-in user.
func stepUpRoutes(c *Config) {
	c.Routes = []Route{
		{Path: "/recent/", AccessRule: AccessRule{StepUp: access.StepUp{MaxAge: 5 * time.Minute}}},
		{Path: "/mfa/", AccessRule: AccessRule{StepUp: access.StepUp{ACRValues: []string{"mfa", "hwk"}}}},
	}
	c.TrustedProxies.From = []string{"127.0.0.1"}
}

// idpSays makes the IdP's ID tokens carry this auth_time (zero: none)
// and acr ("": none) from now on.
func idpSays(tp *hostileidp.IdP, authTime time.Time, acr string) {
	tp.Set(func(tp *hostileidp.IdP) {
		tp.Claims = func(c map[string]any) {
			delete(c, "auth_time")
			delete(c, "acr")
			if !authTime.IsZero() {
				c["auth_time"] = authTime.Unix()
			}
			if acr != "" {
				c["acr"] = acr
			}
		}
	})
}

// followStepUp follows the step-up redirect loc through the IdP's login
// and returns the IdP's authorization URL and the callback's answer.
func (e *env) followStepUp(loc string) (*url.URL, *http.Response) {
	e.t.Helper()
	resp := e.get(loc)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("step-up start: %d %s", resp.StatusCode, body(resp))
	}
	at, _ := url.Parse(resp.Header.Get("Location"))
	cb := demologin.Walk(e.t, at, "alice", func(method, u string, form url.Values) *http.Response { return e.do(e.client, method, u, form) },
		func(u *url.URL) bool { return strings.HasPrefix(u.String(), e.broker.URL+"/oauth2/callback/") })
	return at, e.get(cb.String())
}

// TestStepUpMaxAge: a session signed in long ago is sent to sign in again
// at its IdP with max_age and prompt=login, comes back to the same rd,
// and the new auth_time is kept; an IdP that leaves out auth_time or
// sends an old one gets the 403 page.
func TestStepUpMaxAge(t *testing.T) {
	e := newEnv(t, withConfig(stepUpRoutes))
	tp := e.idps["alpha"].tamper
	idpSays(tp, time.Now().Add(-time.Hour), "")
	e.login("alpha", "alice", "/")
	if resp := e.get(e.broker.URL + "/other"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a route without step-up: %d", resp.StatusCode)
	}
	resp := e.get(e.broker.URL + "/recent/report?x=1")
	loc := resp.Header.Get("Location")
	want := e.broker.URL + "/oauth2/start/alpha?max_age=300&rd=%2Frecent%2Freport%3Fx%3D1"
	if resp.StatusCode != http.StatusFound || loc != want {
		t.Fatalf("step-up: %d %q, want %q", resp.StatusCode, loc, want)
	}
	// An API client gets 401 naming the same URL.
	if challenges, signIn := apiRefusal(t, e.request(e.client, http.MethodGet, "/recent/report?x=1", map[string]string{"Accept": "application/json"})); signIn != want || len(challenges) != 1 {
		t.Errorf("API client: %q %q", signIn, challenges)
	}

	// An IdP that ignores max_age: auth_time stays old, or is missing.
	for _, at := range []time.Time{time.Now().Add(-time.Hour), {}} {
		idpSays(tp, at, "")
		_, cb := e.followStepUp(loc)
		if cb.StatusCode != http.StatusForbidden || !strings.Contains(body(cb), "stronger sign-in") {
			t.Errorf("auth_time %v: %d", at, cb.StatusCode)
		}
		if !strings.Contains(e.logs.settled("max_age 5m0s asked"), "max_age 5m0s asked") {
			t.Error("the reason is not in the log")
		}
	}

	idpSays(tp, time.Now(), "")
	at, cb := e.followStepUp(loc)
	if q := at.Query(); q.Get("max_age") != "300" || q.Get("prompt") != "login" {
		t.Errorf("the IdP was asked %v", q)
	}
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/recent/report?x=1" {
		t.Fatalf("after the step-up: %d %q", cb.StatusCode, cb.Header.Get("Location"))
	}
	if resp := e.get(e.broker.URL + "/recent/report?x=1"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the step-up the route answers %d", resp.StatusCode)
	}
	id, _, _, _ := e.server.sessions.Stored(e.sessionToken(e.client))
	if time.Since(id.AuthnTime) > time.Minute {
		t.Errorf("the session keeps auth_time %v", id.AuthnTime)
	}
}

// TestStepUpACR: a route that needs an acr sends the session to its IdP
// with acr_values; an IdP that answers with another acr gets the 403
// page; the acr it states is kept. Forward-auth answers 401 with the
// step-up start as Location and the described request as rd.
func TestStepUpACR(t *testing.T) {
	e := newEnv(t, withConfig(stepUpRoutes))
	tp := e.idps["alpha"].tamper
	idpSays(tp, time.Now(), "pwd")
	e.login("alpha", "alice", "/")
	host := strings.TrimPrefix(e.broker.URL, "http://")
	fa := e.request(e.client, http.MethodGet, "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/mfa/keys", "X-Forwarded-Method": "GET",
		"X-Forwarded-Host": host, "X-Forwarded-Proto": "http"})
	loc := fa.Header.Get("Location")
	want := e.broker.URL + "/oauth2/start/alpha?acr_values=mfa+hwk&rd=" + url.QueryEscape(e.broker.URL+"/mfa/keys")
	if fa.StatusCode != http.StatusUnauthorized || loc != want {
		t.Fatalf("forward-auth: %d %q, want %q", fa.StatusCode, loc, want)
	}
	if fa := e.request(e.client, http.MethodGet, "/oauth2/auth?redirect=1", map[string]string{"X-Forwarded-Uri": "/mfa/keys", "X-Forwarded-Method": "GET",
		"X-Forwarded-Host": host, "X-Forwarded-Proto": "http"}); fa.StatusCode != http.StatusFound || fa.Header.Get("Location") != want {
		t.Errorf("forward-auth with redirect=1: %d %q", fa.StatusCode, fa.Header.Get("Location"))
	}
	resp := e.get(e.broker.URL + "/mfa/keys")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != e.broker.URL+"/oauth2/start/alpha?acr_values=mfa+hwk&rd=%2Fmfa%2Fkeys" {
		t.Fatalf("proxy: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	at, cb := e.followStepUp(resp.Header.Get("Location"))
	if at.Query().Get("acr_values") != "mfa hwk" {
		t.Errorf("the IdP was asked %v", at.Query())
	}
	if cb.StatusCode != http.StatusForbidden || !strings.Contains(e.logs.settled("acr one of"), "acr one of [mfa hwk] asked, got pwd") {
		t.Errorf("acr pwd: %d", cb.StatusCode)
	}

	idpSays(tp, time.Now(), "hwk")
	_, cb = e.followStepUp(resp.Header.Get("Location"))
	if cb.StatusCode != http.StatusFound || cb.Header.Get("Location") != "/mfa/keys" {
		t.Fatalf("acr hwk: %d %q", cb.StatusCode, cb.Header.Get("Location"))
	}
	if resp := e.get(e.broker.URL + "/mfa/keys"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the step-up: %d", resp.StatusCode)
	}
	if fa := e.request(e.client, http.MethodGet, "/oauth2/auth", map[string]string{"X-Forwarded-Uri": "/mfa/keys", "X-Forwarded-Method": "GET",
		"X-Forwarded-Host": host}); fa.StatusCode != http.StatusAccepted {
		t.Errorf("forward-auth after the step-up: %d", fa.StatusCode)
	}
	if id, _, _, _ := e.server.sessions.Stored(e.sessionToken(e.client)); id.ACR != "hwk" {
		t.Errorf("the session keeps acr %q", id.ACR)
	}
}

// TestStepUpRequire: an embedding program's Require(rule) with max_age
// sends an old sign-in to sign in again, as the proxy does.
func TestStepUpRequire(t *testing.T) {
	e := newEnv(t, withMount(func(s *Server) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/oauth2/", s.Handler())
		mux.Handle("/admin/", s.Require(AccessRule{StepUp: access.StepUp{MaxAge: time.Minute}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("admin page"))
		})))
		return mux
	}))
	tp := e.idps["beta"].tamper
	idpSays(tp, time.Now().Add(-time.Hour), "")
	e.login("beta", "alice", "/")
	resp := e.get(e.broker.URL + "/admin/")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.broker.URL+"/oauth2/start/beta?max_age=60&") {
		t.Fatalf("Require: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	idpSays(tp, time.Now(), "")
	if _, cb := e.followStepUp(resp.Header.Get("Location")); cb.StatusCode != http.StatusFound {
		t.Fatalf("callback %d", cb.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/admin/"); resp.StatusCode != http.StatusOK || body(resp) != "admin page" {
		t.Errorf("after the step-up: %d", resp.StatusCode)
	}
}

// TestStepUpBearer: an API client whose token does not meet the route
// gets RFC 9470's challenge; one whose token does passes.
func TestStepUpBearer(t *testing.T) {
	e, _ := apiEnv(t, withConfig(stepUpRoutes))
	tp := e.idps["alpha"].tamper
	resp := e.request(nil, http.MethodGet, "/mfa/keys", bearerHeader(tp.Mint(e.accessClaims("alpha"), "", "at+jwt")))
	if resp.StatusCode != http.StatusUnauthorized ||
		resp.Header.Get("WWW-Authenticate") != `Bearer realm="oidc-broker", error="insufficient_user_authentication", acr_values="mfa hwk"` {
		t.Errorf("token without acr: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = e.request(nil, http.MethodGet, "/recent/x", bearerHeader(tp.Mint(with(e.accessClaims("alpha"), "auth_time", time.Now().Add(-time.Hour).Unix()), "", "at+jwt")))
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "max_age=300") {
		t.Errorf("old auth_time: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp := e.request(nil, http.MethodGet, "/mfa/keys", bearerHeader(tp.Mint(with(e.accessClaims("alpha"), "acr", "mfa"), "", "at+jwt"))); resp.StatusCode != http.StatusOK {
		t.Errorf("token with acr mfa: %d", resp.StatusCode)
	}
}

// TestStepUpConfig: bad max_age and acr_values fail the start, naming the
// field; malformed step-up parameters at the start are refused.
func TestStepUpConfig(t *testing.T) {
	for _, tc := range []struct {
		rule AccessRule
		want string
	}{
		{AccessRule{StepUp: access.StepUp{MaxAge: -time.Second}}, "routes[0].max_age"},
		{AccessRule{StepUp: access.StepUp{MaxAge: 2 * 365 * 24 * time.Hour}}, "routes[0].max_age"},
		{AccessRule{StepUp: access.StepUp{ACRValues: []string{"a b"}}}, "routes[0].acr_values[0]"},
		{AccessRule{Public: true, StepUp: access.StepUp{ACRValues: []string{"mfa"}}}, "routes[0].public: cannot be combined with max_age"},
	} {
		cfg := Config{Routes: []Route{{Path: "/x/", AccessRule: tc.rule}}}
		if err := cfg.validate(false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.rule, err, tc.want)
		}
	}
	e := newEnv(t)
	for _, q := range []string{"max_age=-1", "max_age=abc", "acr_values=%22x%22"} {
		if resp := e.get(e.broker.URL + "/oauth2/start/alpha?" + q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", q, resp.StatusCode)
		}
	}
}

// TestStepUpIdPRefuses: an IdP that answers the step-up with
// unmet_authentication_requirements leads to the same 403 page.
func TestStepUpIdPRefuses(t *testing.T) {
	e := newEnv(t, withConfig(stepUpRoutes))
	tp := e.idps["alpha"].tamper
	idpSays(tp, time.Now(), "pwd")
	e.login("alpha", "alice", "/")
	resp := e.get(e.broker.URL + "/mfa/keys")
	start := e.get(resp.Header.Get("Location"))
	at, _ := url.Parse(start.Header.Get("Location"))
	cb := e.broker.URL + "/oauth2/callback/alpha?error=unmet_authentication_requirements&state=" + url.QueryEscape(at.Query().Get("state"))
	if r := e.get(cb); r.StatusCode != http.StatusForbidden || !strings.Contains(body(r), "stronger sign-in") {
		t.Errorf("unmet_authentication_requirements: %d", r.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/other"); resp.StatusCode != http.StatusOK {
		t.Errorf("the session was lost: %d", resp.StatusCode)
	}
}
