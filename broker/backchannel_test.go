package broker

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oidc-broker/oidc-broker/broker/backchannel"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// logoutIssuer stands in for an IdP's back-channel logout (the demo IdP
// sends none): it publishes one more key in the IdP's JWKS and signs
// logout tokens with it.
type logoutIssuer struct {
	key      *rsa.PrivateKey
	iss, aud string
	jti      atomic.Int64
}

var (
	logoutKeyOnce sync.Once
	logoutKey     *rsa.PrivateKey
)

// newLogoutIssuer puts a logoutIssuer in front of the env's IdP id. Call it
// before the first request to that IdP.
func newLogoutIssuer(e *env, id string) *logoutIssuer {
	logoutKeyOnce.Do(func() { logoutKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	li := &logoutIssuer{key: logoutKey, iss: e.idps[id].srv.URL, aud: "broker-" + id}
	interceptIdP(e, id, "/keys", li.addKey)
	return li
}

// addKey adds the logout key to the IdP's JWKS.
func (li *logoutIssuer) addKey(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	var set map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &set)
	b, _ := json.Marshal(jose.JSONWebKey{Key: li.key.Public(), KeyID: "logout-key", Algorithm: "RS256", Use: "sig"})
	var k map[string]any
	_ = json.Unmarshal(b, &k)
	keys, _ := set["keys"].([]any)
	set["keys"] = append(keys, k)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// claims are a valid logout token's claims for sub and sid (either may be
// ""), with a fresh jti.
func (li *logoutIssuer) claims(sub, sid string) map[string]any {
	c := map[string]any{"iss": li.iss, "aud": li.aud, "iat": time.Now().Unix(),
		"exp": time.Now().Add(2 * time.Minute).Unix(), "jti": fmt.Sprintf("jti-%d", li.jti.Add(1)),
		"events": map[string]any{providers.BackChannelLogoutEvent: map[string]any{}}}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}

// sign signs claims as the IdP would (typ logout+jwt), or with key when
// given.
func (li *logoutIssuer) sign(t *testing.T, claims map[string]any, key *rsa.PrivateKey) string {
	t.Helper()
	if key == nil {
		key = li.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "logout-key"}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// postLogout posts a logout token to the broker's back-channel endpoint of
// provider, as an IdP does (no cookies).
func (e *env) postLogout(provider string, form url.Values) *http.Response {
	e.t.Helper()
	return e.do(&http.Client{}, http.MethodPost, e.broker.URL+"/oauth2/backchannel_logout/"+provider, form)
}

// loginAs signs a new browser in as user at provider, with the IdP session
// sid in its ID token when sid is set.
func (e *env) loginAs(provider, user, sid string) *http.Client {
	e.t.Helper()
	tp := e.idps[provider].tamper
	tp.Set(func(tp *hostileidp.IdP) {
		tp.Claims = nil
		if sid != "" {
			tp.Claims = func(c map[string]any) { c["sid"] = sid }
		}
	})
	c := newBrowser()
	if resp := e.do(c, http.MethodGet, e.startLogin(c, provider, user, "/").String(), nil); resp.StatusCode != http.StatusFound {
		e.t.Fatalf("login %s at %s: %d %s", user, provider, resp.StatusCode, body(resp))
	}
	return c
}

func TestBackchannelLogout(t *testing.T) {
	e := newEnv(t)
	li := newLogoutIssuer(e, "alpha")
	alice1 := e.loginAs("alpha", "alice", "idp-session-1")
	alice2 := e.loginAs("alpha", "alice", "idp-session-2")
	bob := e.loginAs("alpha", "bob", "idp-session-3")
	aliceAtBeta := e.loginAs("beta", "alice", "")

	// By sid: that IdP session's broker sessions end, no others.
	resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", "idp-session-1"), nil)}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("logout by sid: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body(resp))
	}
	if e.signedIn(alice1) || !e.signedIn(alice2) || !e.signedIn(bob) || !e.signedIn(aliceAtBeta) {
		t.Fatalf("after logout by sid: alice1 %v alice2 %v bob %v alice at beta %v",
			e.signedIn(alice1), e.signedIn(alice2), e.signedIn(bob), e.signedIn(aliceAtBeta))
	}
	if !strings.Contains(e.logs.String(), `msg="back-channel logout" provider=alpha by=sid user=alpha:alpha-alice sessions=1`) {
		t.Errorf("no log of the logout:\n%s", e.logs.String())
	}

	// By sub: every session of the user at that provider ends.
	resp = e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", ""), nil)}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout by sub: %d %s", resp.StatusCode, body(resp))
	}
	if e.signedIn(alice2) || !e.signedIn(bob) || !e.signedIn(aliceAtBeta) {
		t.Fatalf("after logout by sub: alice2 %v bob %v alice at beta %v", e.signedIn(alice2), e.signedIn(bob), e.signedIn(aliceAtBeta))
	}
	// The index no longer lists them.
	if toks, _ := e.server.store.IndexTokens(context.Background(), subKey("alpha", "alpha-alice")); len(toks) != 0 {
		t.Errorf("index still lists %v", toks)
	}
}

// TestBackchannelLogoutSessionsWithoutSID: an IdP that names the session in
// logout tokens but put no sid in the ID tokens: the user's sessions that
// recorded no sid end too (the sid cannot find them), and nobody else's.
func TestBackchannelLogoutSessionsWithoutSID(t *testing.T) {
	e := newEnv(t)
	li := newLogoutIssuer(e, "alpha")
	alice := e.loginAs("alpha", "alice", "")
	aliceWithSID := e.loginAs("alpha", "alice", "idp-session-9")
	bob := e.loginAs("alpha", "bob", "")
	resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", "idp-session-1"), nil)}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d %s", resp.StatusCode, body(resp))
	}
	if e.signedIn(alice) || !e.signedIn(aliceWithSID) || !e.signedIn(bob) {
		t.Errorf("alice without sid %v, alice with another sid %v, bob %v", e.signedIn(alice), e.signedIn(aliceWithSID), e.signedIn(bob))
	}
}

// TestBackchannelLogoutRefusals: every check of Back-Channel Logout 1.0
// §2.6, through the endpoint: 400 with a JSON error, not cached, the failed
// check in the log (and never the token), and the session untouched.
func TestBackchannelLogoutRefusals(t *testing.T) {
	e := newEnv(t)
	li := newLogoutIssuer(e, "alpha")
	alice := e.loginAs("alpha", "alice", "idp-session-1")
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	valid := func(edit func(map[string]any)) string {
		c := li.claims("alpha-alice", "idp-session-1")
		edit(c)
		return li.sign(t, c, nil)
	}
	noneToken := func() string {
		payload, _ := json.Marshal(li.claims("alpha-alice", "idp-session-1"))
		return "eyJhbGciOiJub25lIiwidHlwIjoibG9nb3V0K2p3dCJ9." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	// A replay needs a token that was accepted once: one for nobody's session.
	replayed := li.sign(t, li.claims("alpha-nobody", ""), nil)
	if resp := e.postLogout("alpha", url.Values{"logout_token": {replayed}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("first use of the token to replay: %d %s", resp.StatusCode, body(resp))
	}
	cases := []struct {
		name     string
		provider string
		form     url.Values
		reason   string // in the log line
	}{
		{"bad signature", "alpha", url.Values{"logout_token": {func() string {
			s := valid(func(map[string]any) {})
			return s[:len(s)-6] + "AAAAAA"
		}()}}, "signature not made by the provider's keys"},
		{"signed by a key the IdP does not publish", "alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", "idp-session-1"), otherKey)}}, "signature not made by the provider's keys"},
		{"alg none", "alpha", url.Values{"logout_token": {noneToken()}}, "not a JWS compact token signed with an accepted algorithm"},
		{"wrong iss", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { c["iss"] = "https://evil.example" })}}, "iss is not the provider's issuer"},
		{"another provider's token", "beta", url.Values{"logout_token": {valid(func(map[string]any) {})}}, "signature not made by the provider's keys"},
		{"wrong aud", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { c["aud"] = "broker-beta" })}}, "aud does not contain the client_id"},
		{"nonce present", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { c["nonce"] = "n" })}}, "nonce present"},
		{"no events claim", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { delete(c, "events") })}}, "events claim lacks the back-channel logout event"},
		{"replayed jti", "alpha", url.Values{"logout_token": {replayed}}, "jti replayed"},
		{"neither sid nor sub", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { delete(c, "sid"); delete(c, "sub") })}}, "neither sid nor sub"},
		{"jti missing", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { delete(c, "jti") })}}, "jti missing"},
		{"iat too old", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) {
			c["iat"] = time.Now().Add(-time.Hour).Unix()
			delete(c, "exp")
		})}}, "iat missing, in the future, or too old"},
		{"iat in the future", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() })}}, "iat missing, in the future, or too old"},
		{"expired", "alpha", url.Values{"logout_token": {valid(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })}}, "exp has passed"},
		{"no logout_token", "alpha", url.Values{"other": {"x"}}, "no logout_token"},
		{"unknown provider", "nope", url.Values{"logout_token": {valid(func(map[string]any) {})}}, "no such provider"},
		{"body too large", "alpha", url.Values{"logout_token": {strings.Repeat("a", backchannel.MaxRequest)}}, "unreadable request body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.postLogout(c.provider, c.form)
			if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(body(resp)) != `{"error":"invalid_request"}` ||
				resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Cache-Control %q, body %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body(resp))
			}
			logs := e.logs.String()
			last := logs[strings.LastIndex(logs, "back-channel logout refused"):]
			last = last[:strings.IndexByte(last, '\n')]
			if !strings.Contains(last, c.reason) {
				t.Errorf("refused for another reason than %q: %s", c.reason, last)
			}
			if tok := c.form.Get("logout_token"); len(tok) > 20 && strings.Contains(logs, tok[:20]) {
				t.Error("the token reached the log")
			}
			if !e.signedIn(alice) {
				t.Fatal("the session ended")
			}
		})
	}
	// Control: the same token, valid, ends the session.
	resp := e.postLogout("alpha", url.Values{"logout_token": {valid(func(map[string]any) {})}})
	if resp.StatusCode != http.StatusOK || e.signedIn(alice) {
		t.Fatalf("control: %d, signed in %v", resp.StatusCode, e.signedIn(alice))
	}
}

// TestBackchannelLogoutRateLimit: a client that keeps sending bad tokens is
// refused with 429 for a while; valid tokens are not counted.
func TestBackchannelLogoutRateLimit(t *testing.T) {
	var offset atomic.Int64
	e := newEnv(t, withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
	li := newLogoutIssuer(e, "alpha")
	for range 30 { // valid tokens: never limited
		if resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-nobody", ""), nil)}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("valid token: %d %s", resp.StatusCode, body(resp))
		}
	}
	for i := range backchannel.Failures {
		if resp := e.postLogout("alpha", url.Values{"logout_token": {"garbage"}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad token %d: %d", i, resp.StatusCode)
		}
	}
	resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-nobody", ""), nil)}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d bad tokens: %d %q", backchannel.Failures, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another provider's endpoint is counted apart.
	if resp := e.postLogout("beta", url.Values{"logout_token": {"garbage"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("beta: %d", resp.StatusCode)
	}
	offset.Store(int64(backchannel.FailureSpan / backchannel.Failures * 2))
	if resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-nobody", ""), nil)}}); resp.StatusCode != http.StatusOK {
		t.Errorf("after waiting: %d", resp.StatusCode)
	}
}

// sessionToken is the browser's session cookie value.
func (e *env) sessionToken(c *http.Client) string {
	u, _ := url.Parse(e.broker.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, DefaultCookieName) {
			return ck.Value
		}
	}
	return ""
}

// TestEndedSessionIsNotWrittenBack: a request that loaded the session before
// a back-channel logout ended it, and modifies it afterwards, does not bring
// it back (scs commits the whole session; the session package's revocation guard refuses).
// With Redis the guard's check and write are one script
// (store.GuardedCommitter); with the memory store two steps.
func TestEndedSessionIsNotWrittenBack(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testEndedSessionIsNotWrittenBack(t, newEnv(t)) })
	t.Run("redis", func(t *testing.T) { testEndedSessionIsNotWrittenBack(t, newRedisEnv(t, redisserver.Start(t))) })
}

func testEndedSessionIsNotWrittenBack(t *testing.T, e *env) {
	li := newLogoutIssuer(e, "alpha")
	sessions := e.server.sessions
	alice := e.loginAs("alpha", "alice", "")
	inflight, err := sessions.LoadStored(e.sessionToken(alice))
	if err != nil {
		t.Fatal(err)
	}
	if resp := e.postLogout("alpha", url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", ""), nil)}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	sessions.CSRF(inflight) // the request in flight writes to the session
	if err := sessions.Commit(inflight); err != nil {
		t.Fatal(err)
	}
	if e.signedIn(alice) {
		t.Fatal("the ended session came back")
	}

	// Control: without the mark the same commit would bring it back, which
	// is what the guard is for.
	bob := e.loginAs("alpha", "bob", "")
	inflight, _ = sessions.LoadStored(e.sessionToken(bob))
	if err := sessions.Backing().DeleteCtx(context.Background(), e.sessionToken(bob)); err != nil {
		t.Fatal(err)
	}
	sessions.CSRF(inflight)
	if err := sessions.Commit(inflight); err != nil {
		t.Fatal(err)
	}
	if !e.signedIn(bob) {
		t.Error("control: an unmarked deleted session was not written back; the test above proves nothing")
	}
}

// TestSignOutIsNotUndoneByAConcurrentRequest: the same for the browser's own
// sign-out, through HTTP: a request that loaded the session before the
// sign-out and saves it afterwards does not sign the browser back in.
func TestSignOutIsNotUndoneByAConcurrentRequest(t *testing.T) {
	noIdP := withConfig(func(c *Config) { c.Logout.IdP = new(false) })
	t.Run("memory", func(t *testing.T) { testSignOutIsNotUndone(t, newEnv(t, noIdP)) })
	t.Run("redis", func(t *testing.T) { testSignOutIsNotUndone(t, newRedisEnv(t, redisserver.Start(t), noIdP)) })
}

func testSignOutIsNotUndone(t *testing.T, e *env) {
	e.login("alpha", "alice", "/")
	inflight, _ := e.server.sessions.LoadStored(e.sessionToken(e.client))
	e.signOut(e.client, "/")
	e.server.sessions.CSRF(inflight)
	if err := e.server.sessions.Commit(inflight); err != nil {
		t.Fatal(err)
	}
	old := newBrowser()
	u, _ := url.Parse(e.broker.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultCookieName, Value: e.server.sessions.Token(inflight), Path: "/"}})
	if e.signedIn(old) {
		t.Error("the signed-out session came back")
	}
}

// TestLogoutAndRefreshAcrossReplicas: two brokers share a Redis server. A
// session whose tokens expired is refreshed once, whichever replica its
// requests reach; a logout token posted to one replica ends the session on
// both.
func TestLogoutAndRefreshAcrossReplicas(t *testing.T) {
	r := redisserver.Start(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a := newRedisEnv(t, r, withClock(now), withScopes("offline_access"))
	li := newLogoutIssuer(a, "alpha")
	cfg := a.server.cfg
	cfg.PublicURL = a.broker.URL
	b, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	bSrv := httptest.NewServer(b.Handler())
	t.Cleanup(bSrv.Close)

	alice := a.loginAs("alpha", "alice", "idp-session-1")
	tp := a.idps["alpha"].tamper
	tp.Set(func(tp *hostileidp.IdP) {
		tp.Claims = func(c map[string]any) { c["sid"], c["groups"] = "idp-session-1", []string{"refreshed"} }
		tp.Userinfo = func(m map[string]any) { m["groups"] = []string{"refreshed"} }
	})
	offset.Store(int64(pastAccessToken))
	var wg sync.WaitGroup
	for i := range 16 {
		base := []string{a.broker.URL, bSrv.URL}[i%2]
		wg.Go(func() {
			resp, err := alice.Get(base + "/oauth2/auth")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("%s: %d", base, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := len(tp.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want the login's and one refresh", n)
	}
	for _, base := range []string{a.broker.URL, bSrv.URL} {
		if got := a.do(alice, http.MethodGet, base+"/oauth2/auth", nil).Header.Get(HeaderGroups); got != "refreshed" {
			t.Errorf("groups at %s: %q", base, got)
		}
	}

	offset.Store(0) // the logout token is issued now
	resp := a.do(&http.Client{}, http.MethodPost, bSrv.URL+"/oauth2/backchannel_logout/alpha",
		url.Values{"logout_token": {li.sign(t, li.claims("alpha-alice", "idp-session-1"), nil)}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout at B: %d %s", resp.StatusCode, body(resp))
	}
	for _, base := range []string{a.broker.URL, bSrv.URL} {
		if resp := a.do(alice, http.MethodGet, base+"/oauth2/auth", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after the logout at B, %s answers %d", base, resp.StatusCode)
		}
	}
}
