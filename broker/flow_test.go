package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// appView is what the demo app reports about the request it received.
type appView struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

func (e *env) appView(c *http.Client, path string, hdr http.Header) (int, appView) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+path, nil)
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v appView
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, v
}

// signedIn reports whether the browser c has a session, via /oauth2/auth.
func (e *env) signedIn(c *http.Client) bool {
	e.t.Helper()
	return e.do(c, http.MethodGet, e.broker.URL+"/oauth2/auth", nil).StatusCode == http.StatusAccepted
}

func TestLoginThroughEachProvider(t *testing.T) {
	e := newEnv(t, withAuthMethod("beta", providers.AuthClientSecretPost))
	for _, id := range []string{"alpha", "beta"} {
		t.Run(id, func(t *testing.T) {
			e.client = newBrowser()
			resp := e.login(id, "alice", "/hello?x=1")
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/hello?x=1" {
				t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
			}
			status, v := e.appView(e.client, "/hello?x=1", nil)
			if status != http.StatusOK {
				t.Fatalf("upstream: status %d", status)
			}
			want := map[string]string{
				HeaderUser:              id + ":" + id + "-alice",
				HeaderProvider:          id,
				HeaderEmail:             "alice@" + id + ".example",
				HeaderPreferredUsername: "alice",
				HeaderGroups:            "admins,engineering",
			}
			for k, w := range want {
				if got := v.Headers[k]; got != w {
					t.Errorf("%s = %q, want %q", k, got, w)
				}
			}
			if v.Path != "/hello" {
				t.Errorf("upstream path %q", v.Path)
			}
			auth := e.get(e.broker.URL + "/oauth2/auth")
			if auth.StatusCode != http.StatusAccepted || auth.Header.Get(HeaderUser) != id+":"+id+"-alice" {
				t.Errorf("/oauth2/auth: %d %q", auth.StatusCode, auth.Header.Get(HeaderUser))
			}
			ui := e.get(e.broker.URL + "/oauth2/userinfo")
			var got map[string]any
			_ = json.Unmarshal([]byte(body(ui)), &got)
			if got["user"] != id+":"+id+"-alice" || got["email_verified"] != true || got["provider"] != id {
				t.Errorf("userinfo = %v", got)
			}
		})
	}
}

func TestUnverifiedEmailIsNotRelayed(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "carol", "/")
	_, v := e.appView(e.client, "/", nil)
	if v.Headers[HeaderUser] != "alpha:alpha-carol" {
		t.Fatalf("not signed in: %v", v.Headers)
	}
	if e, ok := v.Headers[HeaderEmail]; ok {
		t.Errorf("unverified email relayed: %q", e)
	}
}

func TestTokenEndpointAuthMethods(t *testing.T) {
	cases := []struct {
		method string
		want   hostileidp.TokenRequest
	}{
		{providers.AuthClientSecretBasic, hostileidp.TokenRequest{Basic: true, Verifier: true}},
		{providers.AuthClientSecretPost, hostileidp.TokenRequest{FormSecret: true, Verifier: true}},
		{providers.AuthNone, hostileidp.TokenRequest{Verifier: true}},
		{providers.AuthPrivateKeyJWT, hostileidp.TokenRequest{Verifier: true, Assertion: true}},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			e := newEnv(t, withAuthMethod("alpha", c.method))
			if resp := e.login("alpha", "bob", "/"); resp.StatusCode != http.StatusFound {
				t.Fatalf("login: %d %s", resp.StatusCode, body(resp))
			}
			reqs := e.idps["alpha"].tamper.TokenRequests()
			if len(reqs) != 1 || reqs[0] != c.want {
				t.Errorf("token requests %+v, want [%+v]", reqs, c.want)
			}
		})
	}
}

// sessionCookies are the session cookies c holds for u.
func sessionCookies(c *http.Client, u *url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == DefaultCookieName {
			out = append(out, ck)
		}
	}
	return out
}

// TestSessionRenewedAtLogin: a session token the browser held before the
// login (planted by an attacker, or of an earlier sign-in) is not the one
// signed in afterwards.
func TestSessionRenewedAtLogin(t *testing.T) {
	e := newEnv(t)
	u, _ := url.Parse(e.broker.URL)
	e.login("alpha", "bob", "/") // an earlier sign-in: a live session token
	if !e.signedIn(e.client) {
		t.Fatal("first login failed")
	}
	cb := e.startLogin(e.client, "alpha", "alice", "/")
	before := sessionCookies(e.client, u)
	if len(before) != 1 {
		t.Fatalf("cookies before callback: %v", before)
	}
	resp := e.get(cb.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback %d", resp.StatusCode)
	}
	after := sessionCookies(e.client, u)
	if len(after) != 1 || after[0].Value == before[0].Value {
		t.Fatalf("session token not renewed: before %v after %v", before, after)
	}
	sc := sessionSetCookie(resp)
	for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("Set-Cookie %q lacks %s", sc, attr)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Secure cookie on plain http: %q", sc)
	}
	// The pre-login token is dead: a fixated session gains nothing.
	old := newBrowser()
	old.Jar.SetCookies(u, before)
	if e.signedIn(old) {
		t.Error("the pre-login session token is signed in")
	}
}

func TestParallelLoginsInTwoTabs(t *testing.T) {
	e := newEnv(t)
	first := e.startLogin(e.client, "alpha", "alice", "/one")
	second := e.startLogin(e.client, "beta", "bob", "/two")
	if resp := e.get(second.String()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/two" {
		t.Fatalf("second tab: %d %s", resp.StatusCode, body(resp))
	}
	if resp := e.get(first.String()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/one" {
		t.Fatalf("first tab: %d %s", resp.StatusCode, body(resp))
	}
	// The last completed login wins.
	if got := e.get(e.broker.URL + "/oauth2/auth").Header.Get(HeaderUser); got != "alpha:alpha-alice" {
		t.Errorf("user %q", got)
	}
}

// refused asserts a refused callback: the status, a friendly page with a
// way to try again, no session, and the reason in the log.
func (e *env) refused(resp *http.Response, status int, reason string) {
	e.t.Helper()
	if resp.StatusCode != status {
		e.t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body(resp))
	}
	if b := body(resp); !strings.Contains(b, "Try again") {
		e.t.Errorf("error page without a way to try again: %s", b)
	}
	if e.signedIn(e.client) {
		e.t.Error("a session was created")
	}
	logs := e.logs.String()
	if last := logs[strings.LastIndex(logs, "login refused"):]; !strings.Contains(last, reason) {
		e.t.Errorf("refused for another reason than %q: %s", reason, last)
	}
}

func TestCallbackRefusals(t *testing.T) {
	t.Run("state started by another provider", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		e.refused(e.get(e.broker.URL+"/oauth2/callback/beta?"+cb.RawQuery), http.StatusBadRequest, "state belongs to provider alpha")
		// The state was spent by the attempt.
		e.refused(e.get(cb.String()), http.StatusBadRequest, "unknown or replayed state")
	})
	t.Run("missing state", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		q := cb.Query()
		q.Del("state")
		e.refused(e.get(e.broker.URL+"/oauth2/callback/alpha?"+q.Encode()), http.StatusBadRequest, "missing state")
	})
	t.Run("unknown state", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		q := cb.Query()
		q.Set("state", "forged")
		e.refused(e.get(e.broker.URL+"/oauth2/callback/alpha?"+q.Encode()), http.StatusBadRequest, "unknown or replayed state")
	})
	t.Run("replayed state", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		if resp := e.get(cb.String()); resp.StatusCode != http.StatusFound {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		resp := e.get(cb.String())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replay: status %d", resp.StatusCode)
		}
		// In another browser the state is unknown as well.
		other := newBrowser()
		if resp := e.do(other, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusBadRequest || e.signedIn(other) {
			t.Fatalf("replay in another browser: %d", resp.StatusCode)
		}
	})
	t.Run("expired state", func(t *testing.T) {
		var offset atomic.Int64
		e := newEnv(t, withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		offset.Store(int64(pending.TTL + time.Minute))
		e.refused(e.get(cb.String()), http.StatusBadRequest, "state expired")
	})
	t.Run("iss parameter of another issuer", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		q := cb.Query()
		q.Set("iss", e.idps["beta"].srv.URL)
		e.refused(e.get(e.broker.URL+"/oauth2/callback/alpha?"+q.Encode()), http.StatusUnauthorized, "RFC 9207")
	})
	t.Run("iss parameter missing although announced", func(t *testing.T) {
		e := newEnv(t, withIssParameter("beta"))
		cb := e.startLogin(e.client, "beta", "alice", "/")
		q := cb.Query()
		if q.Get("iss") != e.idps["beta"].srv.URL {
			t.Fatalf("IdP did not send iss: %v", q)
		}
		q.Del("iss")
		e.refused(e.get(e.broker.URL+"/oauth2/callback/beta?"+q.Encode()), http.StatusUnauthorized, "RFC 9207")
	})
	t.Run("IdP error access_denied", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}
		resp := e.get(e.broker.URL + "/oauth2/callback/alpha?" + q.Encode())
		e.refused(resp, http.StatusForbidden, "access_denied")
		if !strings.Contains(body(resp), "cancelled") {
			t.Errorf("page does not say the sign-in was cancelled: %s", body(resp))
		}
	})
	t.Run("IdP error login_required", func(t *testing.T) {
		e := newEnv(t)
		cb := e.startLogin(e.client, "alpha", "alice", "/")
		q := url.Values{"state": {cb.Query().Get("state")}, "error": {"login_required"}, "error_description": {"secret detail <b>"}}
		resp := e.get(e.broker.URL + "/oauth2/callback/alpha?" + q.Encode())
		e.refused(resp, http.StatusUnauthorized, "login_required")
		if strings.Contains(body(resp), "secret detail") {
			t.Error("error_description reached the page")
		}
	})
	t.Run("code of IdP B at the callback of IdP A (mix-up)", func(t *testing.T) {
		e := newEnv(t)
		a := e.startLogin(e.client, "alpha", "alice", "/")
		b := e.startLogin(newBrowser(), "beta", "alice", "/")
		q := url.Values{"state": {a.Query().Get("state")}, "code": {b.Query().Get("code")}}
		e.refused(e.get(e.broker.URL+"/oauth2/callback/alpha?"+q.Encode()), http.StatusUnauthorized, "token endpoint error invalid_grant")
	})
}

// TestClientRejectedByTokenEndpoint: a misconfigured client is the
// broker's problem (502), told apart from a refused code (401).
func TestClientRejectedByTokenEndpoint(t *testing.T) {
	e := newEnv(t, withWrongSecret("alpha"))
	e.refused(e.login("alpha", "alice", "/"), http.StatusBadGateway, "token endpoint refused the client: invalid_client")
}

func TestIssParameterAccepted(t *testing.T) {
	e := newEnv(t, withIssParameter("beta"))
	if resp := e.login("beta", "alice", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login with iss: %d %s", resp.StatusCode, body(resp))
	}
}

func TestIDTokenRefusals(t *testing.T) {
	cases := []struct {
		name   string
		claims func(map[string]any)
		sign   string
		want   string // in the logged reason
	}{
		{"signature broken", func(map[string]any) {}, "broken", "invalid signature"},
		{"alg none", func(map[string]any) {}, "none", "signature algorithm not supported"},
		{"HS256 with the client secret", func(map[string]any) {}, "HS256:" + clientSecret("alpha"), "signature algorithm not supported"},
		{"wrong iss", func(c map[string]any) { c["iss"] = "https://evil.example" }, "", "issuer does not match"},
		{"wrong aud", func(c map[string]any) { c["aud"] = []string{"someone-else"} }, "", "audience is not valid"},
		{"several audiences, azp not us", func(c map[string]any) { c["aud"] = []string{"broker-alpha", "other"}; c["azp"] = "other" }, "", "authorized party is not valid"},
		{"several audiences, no azp", func(c map[string]any) { c["aud"] = []string{"broker-alpha", "other"}; delete(c, "azp") }, "", "authorized party"},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, "", "token has expired"},
		{"issued in the future", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }, "", "issuedAt of token is in the future"},
		{"nonce wrong", func(c map[string]any) { c["nonce"] = "not-the-nonce" }, "", "nonce does not match"},
		{"nonce missing", func(c map[string]any) { delete(c, "nonce") }, "", "nonce does not match"},
		{"sub missing", func(c map[string]any) { delete(c, "sub") }, "", "subject missing"},
		{"at_hash wrong", func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, "", "at_hash does not correspond"},
		{"c_hash wrong", func(c map[string]any) { c["c_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, "", "c_hash does not match"},
		{"kid missing, several keys in the JWKS", func(map[string]any) {}, "kid:-", "multiple possible keys"},
		{"signed by a key the IdP does not publish", func(map[string]any) {}, "kid:unpublished", "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) {
				tp.Claims, tp.Sign = c.claims, c.sign
				if kid, ok := strings.CutPrefix(c.sign, "kid:"); ok {
					tp.Sign, tp.Kid = "", kid
					tp.Hidden = kid == "unpublished"
				}
			})
			e.refused(e.login("alpha", "alice", "/"), http.StatusUnauthorized, c.want)
		})
	}
	// The harness itself: a token re-signed unchanged with the added key is
	// accepted, so each case above fails for its own reason.
	t.Run("control: re-signed, unchanged", func(t *testing.T) {
		e := newEnv(t)
		e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = func(map[string]any) {} })
		if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
			t.Fatalf("control login: %d %s", resp.StatusCode, body(resp))
		}
	})
}

// TestIDTokenAccepted: variations that are legitimate.
func TestIDTokenAccepted(t *testing.T) {
	cases := []struct {
		name string
		set  func(*hostileidp.IdP)
	}{
		{"kid absent, exactly one key", func(tp *hostileidp.IdP) { tp.Kid, tp.Only = "-", true }},
		{"userinfo signed as a JWT", func(tp *hostileidp.IdP) { tp.SignedUserinfo = true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = func(map[string]any) {}; c.set(tp) })
			if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
				t.Fatalf("login: %d %s\n%s", resp.StatusCode, body(resp), e.logs.String())
			}
			_, v := e.appView(e.client, "/", nil)
			if v.Headers[HeaderGroups] != "admins,engineering" {
				t.Errorf("identity %v", v.Headers)
			}
		})
	}
}

func TestSignedUserinfoRefusals(t *testing.T) {
	cases := []struct {
		name string
		set  func(*hostileidp.IdP)
		want string
	}{
		{"bad signature", func(tp *hostileidp.IdP) { tp.UserinfoSign = "broken" }, "signed userinfo"},
		{"alg none", func(tp *hostileidp.IdP) { tp.UserinfoSign = "none" }, "signed userinfo"},
		{"another issuer", func(tp *hostileidp.IdP) { tp.Userinfo = func(m map[string]any) { m["iss"] = "https://evil.example" } }, "iss is not the provider's issuer"},
		{"another audience", func(tp *hostileidp.IdP) { tp.Userinfo = func(m map[string]any) { m["aud"] = "someone-else" } }, "aud does not contain"},
		{"another subject", func(tp *hostileidp.IdP) { tp.Userinfo = func(m map[string]any) { m["sub"] = "alpha-bob" } }, "userinfo sub does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withUserinfo("alpha", "always"))
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.SignedUserinfo = true; c.set(tp) })
			e.refused(e.login("alpha", "alice", "/"), http.StatusUnauthorized, c.want)
		})
	}
}

func TestUserinfoSubjectMismatchRefused(t *testing.T) {
	e := newEnv(t, withUserinfo("alpha", "always"))
	e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Userinfo = func(m map[string]any) { m["sub"] = "alpha-bob" } })
	e.refused(e.login("alpha", "alice", "/"), http.StatusUnauthorized, "userinfo sub does not match")
}

func TestUnavailableProvider(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) {
		c.Providers = append(c.Providers, providers.Config{ID: "down", Name: "Down", Issuer: "http://127.0.0.1:1",
			ClientID: "x", ClientSecret: "y"})
	}))
	resp := e.get(e.broker.URL + "/oauth2/start/down?rd=/x")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body(resp), "Try again") {
		t.Fatalf("start on a dead IdP: %d %s", resp.StatusCode, body(resp))
	}
	page := body(e.get(e.broker.URL + "/oauth2/sign_in"))
	if !strings.Contains(page, `aria-disabled="true">Sign in with Down`) {
		t.Errorf("dead IdP not shown disabled:\n%s", page)
	}
	if !strings.Contains(page, `href="/oauth2/start/alpha?rd=%2F"`) {
		t.Errorf("live IdP not offered:\n%s", page)
	}
	if resp := e.login("alpha", "bob", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("other IdP affected: %d", resp.StatusCode)
	}
}

func TestUnauthenticatedRequests(t *testing.T) {
	e := newEnv(t)
	resp := e.get(e.broker.URL + "/some/page?q=1")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/oauth2/sign_in?rd=%2Fsome%2Fpage%3Fq%3D1" {
		t.Errorf("browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, _ := e.appView(e.client, "/api", nil); status != http.StatusUnauthorized {
		t.Errorf("JSON client: %d", status)
	}
	if resp := e.do(e.client, http.MethodPost, e.broker.URL+"/api", url.Values{"a": {"b"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/oauth2/auth"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/oauth2/auth: %d", resp.StatusCode)
	}
	if resp := e.get(e.broker.URL + "/oauth2/userinfo"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/oauth2/userinfo: %d", resp.StatusCode)
	}
}

func TestClientIdentityHeadersStripped(t *testing.T) {
	e := newEnv(t)
	forged := http.Header{}
	forged.Set(HeaderUser, "alpha:admin")
	forged["x-auth-request-groups"] = []string{"admins"} // not canonical: still stripped
	forged.Set("X-Auth-Request-Extra", "x")
	if status, _ := e.appView(e.client, "/", forged); status != http.StatusUnauthorized {
		t.Fatalf("forged headers got through unauthenticated: %d", status)
	}
	e.login("alpha", "bob", "/")
	_, v := e.appView(e.client, "/", forged)
	if v.Headers[HeaderUser] != "alpha:alpha-bob" || v.Headers[HeaderGroups] != "engineering" {
		t.Errorf("identity headers %v", v.Headers)
	}
	if _, ok := v.Headers["X-Auth-Request-Extra"]; ok {
		t.Error("client X-Auth-Request-Extra reached the app")
	}
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Logout.IdP = new(false) })) // local only; signout_test.go: at the IdP too
	e.login("alpha", "alice", "/")
	// A GET never signs out: it shows a form.
	page := e.get(e.broker.URL + "/oauth2/sign_out?rd=/bye")
	if page.StatusCode != http.StatusOK || !e.signedIn(e.client) {
		t.Fatalf("GET sign_out: %d", page.StatusCode)
	}
	b := body(page)
	i := strings.Index(b, `name="csrf" value="`)
	if i < 0 {
		t.Fatalf("no csrf field: %s", b)
	}
	csrf := b[i+len(`name="csrf" value="`):]
	csrf = csrf[:strings.IndexByte(csrf, '"')]
	if resp := e.do(e.client, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {"wrong"}}); resp.StatusCode != http.StatusForbidden || !e.signedIn(e.client) {
		t.Fatalf("sign-out with a bad CSRF token: %d", resp.StatusCode)
	}
	resp := e.do(e.client, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {csrf}, "rd": {"/bye"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if e.signedIn(e.client) {
		t.Error("still signed in")
	}
}

func TestOpenRedirectRefusedAfterLogin(t *testing.T) {
	e := newEnv(t)
	resp := e.login("alpha", "alice", "//evil.example/x")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("rd=//evil: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestKeyRotation: the IdP starts signing with a key the broker has not
// cached; the broker refetches the JWKS once and accepts it. Tokens with
// unknown kids cost at most one JWKS fetch per interval, not one each.
func TestKeyRotation(t *testing.T) {
	var offset atomic.Int64
	e := newEnv(t, withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
	tp := e.idps["alpha"].tamper
	tp.Set(func(tp *hostileidp.IdP) { tp.Hidden = true })
	if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	if n := tp.KeyFetches(); n != 1 {
		t.Fatalf("JWKS fetched %d times for the first login", n)
	}
	// Rotation: a new key appears and signs from now on.
	offset.Store(int64(11 * time.Second))
	tp.Set(func(tp *hostileidp.IdP) { tp.Hidden = false; tp.Claims = func(map[string]any) {} })
	e.client = newBrowser()
	if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login after rotation: %d %s\n%s", resp.StatusCode, body(resp), e.logs.String())
	}
	if n := tp.KeyFetches(); n != 2 {
		t.Errorf("JWKS fetched %d times after rotation, want 2", n)
	}
	// Forged kids: refused, and no fetch storm.
	for i := range 5 {
		tp.Set(func(tp *hostileidp.IdP) { tp.Kid = fmt.Sprintf("forged-%d", i) })
		e.client = newBrowser()
		e.refused(e.login("alpha", "alice", "/"), http.StatusUnauthorized, "signature")
	}
	if n := tp.KeyFetches(); n != 2 {
		t.Errorf("JWKS fetched %d times for 5 forged kids within one interval", n)
	}
}
