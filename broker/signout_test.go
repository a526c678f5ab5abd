package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// signOut confirms the sign-out on the confirmation page of browser c, with
// rd, and returns the answer to the confirmation (not followed).
func (e *env) signOut(c *http.Client, rd string) *http.Response {
	e.t.Helper()
	page := body(e.do(c, http.MethodGet, e.broker.URL+"/oauth2/sign_out?rd="+url.QueryEscape(rd), nil))
	i := strings.Index(page, `name="csrf" value="`)
	if i < 0 {
		e.t.Fatalf("no csrf field: %s", page)
	}
	csrf := page[i+len(`name="csrf" value="`):]
	csrf = csrf[:strings.IndexByte(csrf, '"')]
	return e.do(c, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {csrf}, "rd": {rd}})
}

// TestSignOutAtTheIdP: RP-Initiated Logout. After the local sign-out the
// browser goes to the IdP's end_session_endpoint with id_token_hint,
// client_id, the provider's post_logout_redirect_uri and a state; the IdP
// sends it back there, and the broker continues to rd.
func TestSignOutAtTheIdP(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	page := body(e.get(e.broker.URL + "/oauth2/sign_out"))
	if !strings.Contains(page, "Signing out also ends your session at Alpha.") {
		t.Errorf("the page does not say the IdP's session ends too:\n%s", page)
	}
	resp := e.signOut(e.client, "/bye")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	idp := e.idps["alpha"].srv.URL
	q := loc.Query()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), idp+"/end_session?") ||
		q.Get("id_token_hint") == "" || q.Get("client_id") != "broker-alpha" || q.Get("state") == "" ||
		q.Get("post_logout_redirect_uri") != e.broker.URL+"/oauth2/signed_out/alpha" {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, loc)
	}
	if e.signedIn(e.client) {
		t.Fatal("still signed in at the broker while at the IdP")
	}
	// The demo IdP checks the hint and the URI, ends its session and sends
	// the browser back with the state.
	resp = e.get(loc.String())
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), e.broker.URL+"/oauth2/signed_out/alpha?") ||
		back.Query().Get("state") != q.Get("state") {
		t.Fatalf("the IdP answered %d %s: %s", resp.StatusCode, back, body(resp))
	}
	resp = e.get(back.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("back from the IdP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if sc := sessionSetCookie(resp); !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("the session the sign-out left is not dropped: %q", sc)
	}
	// Once only: the same landing again shows the signed-out page.
	if resp := e.get(back.String()); resp.Header.Get("Location") != "/oauth2/sign_out" {
		t.Errorf("second landing: %q", resp.Header.Get("Location"))
	}
	if !strings.Contains(e.logs.String(), `msg="signed out at the identity provider" provider=alpha`) {
		t.Errorf("no log of the IdP's sign-out")
	}
}

// TestSignedOutLandingRefusals: the way back from the IdP continues to rd
// only with this browser's state for this provider.
func TestSignedOutLandingRefusals(t *testing.T) {
	cases := []struct {
		name string
		edit func(*url.URL)
	}{
		{"wrong state", func(u *url.URL) { u.RawQuery = "state=forged" }},
		{"no state", func(u *url.URL) { u.RawQuery = "" }},
		{"another provider's landing", func(u *url.URL) { u.Path = "/oauth2/signed_out/beta" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.login("alpha", "alice", "/")
			loc, _ := url.Parse(e.signOut(e.client, "/bye").Header.Get("Location"))
			back, _ := url.Parse(e.get(loc.String()).Header.Get("Location"))
			c.edit(back)
			resp := e.get(back.String())
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/oauth2/sign_out" {
				t.Errorf("landing: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	t.Run("rd not allowed", func(t *testing.T) {
		e := newEnv(t)
		e.login("alpha", "alice", "/")
		loc, _ := url.Parse(e.signOut(e.client, "https://evil.example/").Header.Get("Location"))
		back := e.get(loc.String()).Header.Get("Location")
		if resp := e.get(back); resp.Header.Get("Location") != "/oauth2/sign_out" {
			t.Errorf("landing: %q", resp.Header.Get("Location"))
		}
	})
	t.Run("without a sign-out", func(t *testing.T) {
		e := newEnv(t)
		if resp := e.get(e.broker.URL + "/oauth2/signed_out/alpha?state=x"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/oauth2/sign_out" {
			t.Errorf("landing: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// TestSignOutStaysLocal: logout.idp false, logout.local_only, and a session
// of a provider without end_session_endpoint (a local account) end at the
// broker only.
func TestSignOutStaysLocal(t *testing.T) {
	cases := []struct {
		name     string
		cfg      func(*Config)
		provider string
		atIdP    bool
	}{
		{"logout.idp false", func(c *Config) { c.Logout.IdP = new(false) }, "alpha", false},
		{"logout.local_only lists it", func(c *Config) { c.Logout.LocalOnly = []string{"alpha"} }, "alpha", false},
		{"logout.local_only lists another", func(c *Config) { c.Logout.LocalOnly = []string{"alpha"} }, "beta", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withConfig(c.cfg))
			e.login(c.provider, "alice", "/")
			page := body(e.get(e.broker.URL + "/oauth2/sign_out"))
			resp := e.signOut(e.client, "/bye")
			loc := resp.Header.Get("Location")
			if got := strings.HasPrefix(loc, e.idps[c.provider].srv.URL+"/end_session?"); got != c.atIdP || (!c.atIdP && loc != "/bye") {
				t.Errorf("sign-out went to %q", loc)
			}
			if strings.Contains(page, "also ends your session") != c.atIdP {
				t.Errorf("the page says otherwise:\n%s", page)
			}
			if e.signedIn(e.client) {
				t.Error("still signed in")
			}
		})
	}
	t.Run("a local account", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		if resp := e.postLocal(e.client, creds(e.localForm(e.client, "/"), "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		if resp := e.signOut(e.client, "/bye"); resp.Header.Get("Location") != "/bye" || e.signedIn(e.client) {
			t.Errorf("sign-out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestLogoutConfig(t *testing.T) {
	cfg := Config{Providers: []providers.Config{{ID: "a", Issuer: "https://a.example", ClientID: "c", ClientSecret: "s"}}}
	cfg.Logout.LocalOnly = []string{"a", "b"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `logout.local_only[1]: "b" is not the id of a provider`) || strings.Contains(err.Error(), "local_only[0]") {
		t.Errorf("err = %v", err)
	}
	if !(LogoutConfig{}).idpLogout("a") || (LogoutConfig{IdP: new(false)}).idpLogout("a") || (LogoutConfig{LocalOnly: []string{"a"}}).idpLogout("a") {
		t.Error("idpLogout")
	}
}

func TestLogoutConfigParsed(t *testing.T) {
	cfg, err := ParseConfig("broker.yaml", []byte(`
providers:
  - id: a
    issuer: https://a.example
    client_id: c
    client_secret: s
session:
  outlive_tokens: false
logout:
  idp: false
  local_only: [a]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Session.outliveTokens() || cfg.Logout.idpLogout("a") || len(cfg.Logout.LocalOnly) != 1 {
		t.Errorf("parsed %+v %+v", cfg.Session, cfg.Logout)
	}
	if !(SessionConfig{}).outliveTokens() {
		t.Error("outlive_tokens is not true by default")
	}
}
