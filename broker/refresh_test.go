package broker

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
)

// The demo IdP's access tokens last five minutes; moving the broker's clock
// past that makes the session's tokens expired.
const pastAccessToken = 6 * time.Minute

// clockEnv is an env whose broker clock the test moves.
func clockEnv(t *testing.T, opts ...envOption) (*env, *atomic.Int64) {
	var offset atomic.Int64
	clock := withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	return newEnv(t, append([]envOption{clock}, opts...)...), &offset
}

// groupsAtIdP makes the IdP state other groups from now on, in ID tokens and
// at userinfo (which wins where both have a claim).
func groupsAtIdP(tp *hostileidp.IdP, groups ...string) {
	tp.Set(func(tp *hostileidp.IdP) {
		tp.Claims = func(c map[string]any) { c["groups"] = groups }
		tp.Userinfo = func(m map[string]any) { m["groups"] = groups }
	})
}

// storedTokens reads the tokens kept in the session of browser c.
func (e *env) storedTokens(c *http.Client) session.Tokens {
	e.t.Helper()
	_, t, _, err := e.server.sessions.Stored(e.sessionToken(c))
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func assertionGroups(t *testing.T, tok string) any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q", tok)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	return c["groups"]
}

// TestRefreshRenewsTheIdentity: once the tokens have expired, the next
// request refreshes them, and the app sees the groups the IdP states now,
// in the headers and in a newly signed assertion.
func TestRefreshRenewsTheIdentity(t *testing.T) {
	e, offset := clockEnv(t, withScopes("offline_access"), withAssertion(nil))
	e.login("alpha", "alice", "/")
	tp := e.idps["alpha"].tamper
	if tok := e.storedTokens(e.client); tok.RefreshToken == "" || tok.IDToken == "" || tok.Expiry.IsZero() {
		t.Fatalf("the session keeps %+v", tok)
	}
	groupsAtIdP(tp, "refreshed")
	_, before := e.appView(e.client, "/", nil)
	if before.Headers[HeaderGroups] != "admins,engineering" || len(tp.TokenRequests()) != 1 {
		t.Fatalf("before expiry: groups %q, %d token requests", before.Headers[HeaderGroups], len(tp.TokenRequests()))
	}

	offset.Store(int64(pastAccessToken))
	status, after := e.appView(e.client, "/", nil)
	if status != http.StatusOK || after.Headers[HeaderGroups] != "refreshed" || after.Headers[HeaderUser] != "alpha:alpha-alice" {
		t.Fatalf("after expiry: %d %v", status, after.Headers)
	}
	if n := len(tp.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want the login's and one refresh", n)
	}
	if g := assertionGroups(t, after.Headers[assertion.DefaultHeader]); g == nil || g.([]any)[0] != "refreshed" {
		t.Errorf("assertion groups %v", g)
	}
	// Renewed: the next requests need no refresh.
	if auth := e.get(e.broker.URL + "/oauth2/auth"); auth.StatusCode != http.StatusAccepted || auth.Header.Get(HeaderGroups) != "refreshed" {
		t.Errorf("forward-auth: %d %q", auth.StatusCode, auth.Header.Get(HeaderGroups))
	}
	if n := len(tp.TokenRequests()); n != 2 {
		t.Errorf("%d token requests after the refresh", n)
	}
	if !strings.Contains(e.logs.String(), `msg="session refreshed" provider=alpha user=alpha:alpha-alice`) {
		t.Error("no log of the refresh")
	}
}

// TestRefreshOncePerSession: many requests of one session notice the
// expiry at once; one refreshes, the others go on and pick up its result.
func TestRefreshOncePerSession(t *testing.T) {
	e, offset := clockEnv(t, withScopes("offline_access"))
	e.login("alpha", "alice", "/")
	tp := e.idps["alpha"].tamper
	groupsAtIdP(tp, "refreshed")
	offset.Store(int64(pastAccessToken))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/auth", nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := len(tp.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want the login's and one refresh", n)
	}
	if got := e.get(e.broker.URL + "/oauth2/auth").Header.Get(HeaderGroups); got != "refreshed" {
		t.Errorf("groups %q", got)
	}
}

// TestRefusedRefreshEndsTheSession: the IdP refuses the refresh token, or
// its new ID token names someone else: the session ends, the user signs in
// again.
func TestRefusedRefreshEndsTheSession(t *testing.T) {
	cases := []struct {
		name   string
		refuse func(e *env)
		reason string
	}{
		{"refresh token revoked (invalid_grant)", func(e *env) {
			rt := e.storedTokens(e.client).RefreshToken
			req, _ := http.NewRequest(http.MethodPost, e.idps["alpha"].srv.URL+"/revoke",
				strings.NewReader(url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("broker-alpha", clientSecret("alpha"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				e.t.Fatalf("revoke: %v %v", resp, err)
			}
			resp.Body.Close()
		}, "invalid_grant"},
		{"new ID token for another sub", func(e *env) {
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = func(c map[string]any) { c["sub"] = "alpha-bob" } })
		}, "sub differs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, offset := clockEnv(t, withScopes("offline_access"))
			e.login("alpha", "alice", "/")
			c.refuse(e)
			offset.Store(int64(pastAccessToken))
			if resp := e.get(e.broker.URL + "/oauth2/auth"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("forward-auth after a refused refresh: %d", resp.StatusCode)
			}
			if resp := e.get(e.broker.URL + "/some/page"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/oauth2/sign_in") {
				t.Errorf("the app: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			logs := e.logs.String()
			if !strings.Contains(logs, `msg="session ended" provider=alpha user=alpha:alpha-alice reason="refresh refused"`) || !strings.Contains(logs, c.reason) {
				t.Errorf("log:\n%s", logs)
			}
			// Signing in again works.
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = nil })
			if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
				t.Errorf("new login: %d", resp.StatusCode)
			}
		})
	}
}

// tokenOutage makes an IdP's token endpoint fail with 503 while down is set.
type tokenOutage struct {
	next http.Handler
	down atomic.Bool
}

func (o *tokenOutage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if o.down.Load() && r.URL.Path == "/oauth/token" {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	o.next.ServeHTTP(w, r)
}

// TestOutliveTokens: what becomes of a session whose tokens expired and
// cannot be refreshed (no refresh token, or the IdP down): by default it
// lasts its own lifetime; with session.outlive_tokens false it ends. An IdP
// that is down is asked again only after session.RefreshLockTTL.
func TestOutliveTokens(t *testing.T) {
	for _, outlive := range []bool{true, false} {
		cfg := withConfig(func(c *Config) {
			if !outlive {
				c.Session.OutliveTokens = new(false)
			}
		})
		t.Run("no refresh token, outlive "+map[bool]string{true: "true", false: "false"}[outlive], func(t *testing.T) {
			e, offset := clockEnv(t, cfg)
			e.login("alpha", "alice", "/")
			if e.storedTokens(e.client).RefreshToken != "" {
				t.Fatal("a refresh token without offline_access")
			}
			offset.Store(int64(pastAccessToken))
			if e.signedIn(e.client) != outlive {
				t.Errorf("signed in %v", !outlive)
			}
			if got := len(e.idps["alpha"].tamper.TokenRequests()); got != 1 {
				t.Errorf("%d token requests", got)
			}
		})
		t.Run("IdP down, outlive "+map[bool]string{true: "true", false: "false"}[outlive], func(t *testing.T) {
			e, offset := clockEnv(t, cfg, withScopes("offline_access"))
			d := e.idps["alpha"].srv.Config.Handler.(*deferred)
			outage := &tokenOutage{next: d.Handler}
			d.Handler = outage
			e.login("alpha", "alice", "/")
			outage.down.Store(true)
			offset.Store(int64(pastAccessToken))
			if e.signedIn(e.client) != outlive {
				t.Fatalf("signed in %v", !outlive)
			}
			if !outlive {
				return
			}
			if !strings.Contains(e.logs.String(), "refresh failed, retrying later") {
				t.Error("no log of the failed refresh")
			}
			tokenRequests := len(e.idps["alpha"].tamper.TokenRequests())
			e.signedIn(e.client) // within session.RefreshLockTTL: not asked again
			if n := len(e.idps["alpha"].tamper.TokenRequests()); n != tokenRequests {
				t.Errorf("the IdP was asked again at once (%d requests, then %d)", tokenRequests, n)
			}
			// Back up, and the lock expired: refreshed.
			outage.down.Store(false)
			offset.Store(int64(pastAccessToken + session.RefreshLockTTL + time.Second))
			if !e.signedIn(e.client) || !strings.Contains(e.logs.String(), `msg="session refreshed"`) {
				t.Error("not refreshed once the IdP was back")
			}
		})
	}
}
