package demo

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

const (
	redirectURI = "http://app.test/callback"
	webSecret   = "web-secret"
)

// testClients are registered at every test IdP, one per token endpoint auth method.
var testClients = []Client{
	{ID: "web", Secret: webSecret, RedirectURIs: []string{redirectURI}}, // basic by default
	{ID: "post", Secret: "post-secret", RedirectURIs: []string{redirectURI}, AuthMethod: AuthMethodPost},
	{ID: "public", RedirectURIs: []string{redirectURI}, AuthMethod: AuthMethodNone},
}

// deferredHandler lets the IdP be built after the test server knows its URL (the issuer).
type deferredHandler struct{ http.Handler }

// startIdP serves a demo IdP with cfg on a test server whose URL becomes cfg.Issuer.
func startIdP(t *testing.T, cfg IdPConfig) *httptest.Server {
	t.Helper()
	var dh deferredHandler
	srv := httptest.NewServer(&dh)
	t.Cleanup(srv.Close)
	cfg.Issuer = srv.URL
	if cfg.Users == nil {
		cfg.Users = DemoUsers("acme")
	}
	if cfg.Clients == nil {
		cfg.Clients = testClients
	}
	h, err := NewIdP(cfg)
	if err != nil {
		t.Fatalf("NewIdP: %v", err)
	}
	dh.Handler = h
	return srv
}

// noRedirects returns a client of srv that does not follow redirects.
func noRedirects(srv *httptest.Server) *http.Client {
	c := *srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

type nonceKey struct{}

func withNonce(ctx context.Context, nonce string) context.Context {
	return context.WithValue(ctx, nonceKey{}, nonce)
}

// newRP makes a relying party for one of testClients.
func newRP(t *testing.T, srv *httptest.Server, clientID, secret string, style oauth2.AuthStyle, scopes ...string) rp.RelyingParty {
	t.Helper()
	relp, err := rp.NewRelyingPartyOIDC(t.Context(), srv.URL, clientID, secret, redirectURI, scopes,
		rp.WithHTTPClient(srv.Client()),
		rp.WithAuthStyle(style),
		rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
			s, _ := ctx.Value(nonceKey{}).(string)
			return s
		})))
	if err != nil {
		t.Fatalf("NewRelyingPartyOIDC: %v", err)
	}
	return relp
}

// get sends a GET without following redirects and returns the response with its body read.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// startLogin GETs authURL and returns the auth request ID from the redirect to the login page.
func startLogin(t *testing.T, srv *httptest.Server, authURL string) string {
	t.Helper()
	resp, body := get(t, noRedirects(srv), authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET authorize: status %d, want 302; body %s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil || loc.Path != "/login" || loc.Query().Get("authRequestID") == "" {
		t.Fatalf("authorize redirected to %v (%v), want /login?authRequestID=…", loc, err)
	}
	return loc.Query().Get("authRequestID")
}

// postLogin submits the login form.
func postLogin(t *testing.T, srv *httptest.Server, id, username, password string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects(srv).PostForm(srv.URL+"/login",
		url.Values{"id": {id}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatalf("POST /login: %v", err)
	}
	return resp, readBody(t, resp)
}

// login scripts a browser through the IdP: authorize → login page → POST /login →
// /authorize/callback, and returns the final redirect to the client.
func login(t *testing.T, srv *httptest.Server, authURL, username, password string) *url.URL {
	t.Helper()
	id := startLogin(t, srv, authURL)
	resp, body := get(t, noRedirects(srv), srv.URL+"/login?authRequestID="+url.QueryEscape(id))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="username"`) {
		t.Fatalf("GET /login: status %d, body %s", resp.StatusCode, body)
	}
	resp, body = postLogin(t, srv, id, username, password)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("POST /login: status %d, want 302; body %s", resp.StatusCode, body)
	}
	resp, body = get(t, noRedirects(srv), resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET callback: status %d, want 302; body %s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("final redirect to %s, want %s", loc, redirectURI)
	}
	return loc
}

// codeFlow runs a full code flow with PKCE and nonce and returns the tokens.
func codeFlow(t *testing.T, srv *httptest.Server, relp rp.RelyingParty, username string) (*oidc.Tokens[*oidc.IDTokenClaims], *url.URL) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	authURL := rp.AuthURL("state-1", relp, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", "nonce-1")))
	cb := login(t, srv, authURL, username, DemoPassword)
	if cb.Query().Get("state") != "state-1" || cb.Query().Get("code") == "" {
		t.Fatalf("callback %s: want state=state-1 and a code", cb)
	}
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "nonce-1"),
		cb.Query().Get("code"), relp, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("CodeExchange: %v", err)
	}
	return tokens, cb
}

func TestDiscovery(t *testing.T) {
	srv := startIdP(t, IdPConfig{})
	resp, body := get(t, srv.Client(), srv.URL+"/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != srv.URL || doc["token_endpoint"] != srv.URL+"/oauth/token" {
		t.Errorf("issuer %v, token_endpoint %v", doc["issuer"], doc["token_endpoint"])
	}
	if _, ok := doc[issParameterSupported]; ok {
		t.Errorf("%s advertised without AuthorizationResponseIss", issParameterSupported)
	}
	for _, hidden := range []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange",
		"urn:ietf:params:oauth:grant-type:device_code"} {
		if strings.Contains(body, hidden) {
			t.Errorf("discovery advertises %s", hidden)
		}
	}
}

func TestCodeFlowClaims(t *testing.T) {
	srv := startIdP(t, IdPConfig{})
	tests := []struct {
		user, scopes  string
		wantName      string
		wantEmail     string
		wantVerified  any // email_verified in the raw claims; nil = absent
		wantGroups    any
		wantPreferred string
	}{
		{"alice", "openid email profile", "Alice Anderson", "alice@acme.example", true,
			[]any{"admins", "engineering"}, "alice"},
		{"bob", "openid groups", "", "", nil, []any{"engineering"}, ""},
		{"carol", "openid email profile groups", "Carol Clark", "carol@acme.example", false, nil, "carol"},
		{"alice", "openid email", "", "alice@acme.example", true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.scopes, func(t *testing.T) {
			relp := newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, strings.Fields(tt.scopes)...)
			tokens, _ := codeFlow(t, srv, relp, tt.user)
			idt := tokens.IDTokenClaims
			info, err := rp.Userinfo[*oidc.UserInfo](t.Context(), tokens.AccessToken, tokens.TokenType, idt.Subject, relp)
			if err != nil {
				t.Fatalf("Userinfo: %v", err)
			}
			for where, got := range map[string]*oidc.UserInfo{"id_token": idt.GetUserInfo(), "userinfo": info} {
				raw := map[string]any{}
				b, _ := json.Marshal(got)
				_ = json.Unmarshal(b, &raw)
				if got.Subject != "acme-"+tt.user || got.Name != tt.wantName || got.Email != tt.wantEmail ||
					got.PreferredUsername != tt.wantPreferred || got.GivenName != "" {
					t.Errorf("%s: sub %q name %q email %q preferred_username %q given_name %q", where,
						got.Subject, got.Name, got.Email, got.PreferredUsername, got.GivenName)
				}
				if !reflect.DeepEqual(raw["email_verified"], tt.wantVerified) {
					t.Errorf("%s: email_verified %v, want %v", where, raw["email_verified"], tt.wantVerified)
				}
				if !reflect.DeepEqual(raw["groups"], tt.wantGroups) {
					t.Errorf("%s: groups %v, want %v", where, raw["groups"], tt.wantGroups)
				}
			}
		})
	}
}

func TestRefreshKeepsClaims(t *testing.T) {
	srv := startIdP(t, IdPConfig{})
	relp := newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, "openid", "profile", "offline_access")
	tokens, _ := codeFlow(t, srv, relp, "bob")
	if tokens.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	refreshed, err := rp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), relp, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("RefreshTokens: %v", err)
	}
	info, err := rp.Userinfo[*oidc.UserInfo](t.Context(), refreshed.AccessToken, refreshed.TokenType, "acme-bob", relp)
	if err != nil {
		t.Fatalf("Userinfo: %v", err)
	}
	if !reflect.DeepEqual(info.Claims["groups"], []any{"engineering"}) {
		t.Errorf("groups after refresh: %v", info.Claims["groups"])
	}
	if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), relp, tokens.RefreshToken, "", ""); err == nil {
		t.Error("the rotated refresh token still works")
	}

	if err := rp.RevokeToken(t.Context(), relp, refreshed.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), relp, refreshed.RefreshToken, "", ""); err == nil {
		t.Error("the revoked refresh token still works")
	}
}

func TestLoginPage(t *testing.T) {
	srv := startIdP(t, IdPConfig{Title: "Demo IdP <A>"})
	relp := newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, "openid")
	id := startLogin(t, srv, rp.AuthURL("s", relp))

	resp, body := get(t, srv.Client(), srv.URL+"/login?authRequestID="+url.QueryEscape(id))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		"Demo identity provider — not for production", "DEMO — not for production",
		"Demo IdP &lt;A&gt;", `<label for="username">`, `<label for="password">`,
		`name="id" value="` + id + `"`, `<button class="block" type="submit" id="sign-in">Sign in</button>`,
		"<tr><td>alice<br>", "<td><code>demo</code></td>", "admins, engineering", "(not verified)", `<html lang="en">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}

	t.Run("wrong password or user re-renders with one message", func(t *testing.T) {
		for _, creds := range [][2]string{{"alice", "wrong"}, {"nobody", DemoPassword}} {
			resp, body := postLogin(t, srv, id, creds[0], creds[1])
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, demoTexts["en"][msgBadCredentials]) ||
				!strings.Contains(body, `name="password"`) {
				t.Errorf("%v: status %d, body %s", creds, resp.StatusCode, body)
			}
		}
		// The request is still pending: the right password still works.
		if resp, _ := postLogin(t, srv, id, "alice", DemoPassword); resp.StatusCode != http.StatusFound {
			t.Errorf("login after failures: status %d", resp.StatusCode)
		}
	})

	t.Run("unknown request", func(t *testing.T) {
		resp, body := get(t, srv.Client(), srv.URL+"/login?authRequestID=nope")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, html.EscapeString(demoTexts["en"][msgUnknownRequest])) {
			t.Errorf("GET: status %d", resp.StatusCode)
		}
		resp, _ = postLogin(t, srv, "nope", "alice", DemoPassword)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST: status %d", resp.StatusCode)
		}
	})
}

func TestNewIdPConfigErrors(t *testing.T) {
	ok := func() IdPConfig {
		return IdPConfig{Issuer: "http://127.0.0.1:9001", Users: DemoUsers("acme"),
			Clients: []Client{{ID: "web", Secret: "s", RedirectURIs: []string{redirectURI}}}}
	}
	tests := []struct {
		name   string
		change func(*IdPConfig)
		want   []string
	}{
		{"empty issuer", func(c *IdPConfig) { c.Issuer = "" }, []string{"IdPConfig.Issuer: must not be empty"}},
		{"issuer with path", func(c *IdPConfig) { c.Issuer += "/realm" }, []string{"IdPConfig.Issuer:"}},
		{"issuer with slash", func(c *IdPConfig) { c.Issuer += "/" }, []string{"IdPConfig.Issuer:"}},
		{"issuer not http", func(c *IdPConfig) { c.Issuer = "ftp://x" }, []string{"IdPConfig.Issuer:"}},
		{"negative lifetime", func(c *IdPConfig) { c.IDTokenLifetime = -1 }, []string{"IdPConfig.IDTokenLifetime:"}},
		{"duplicate user ID", func(c *IdPConfig) { c.Users[1].ID = c.Users[0].ID },
			[]string{`IdPConfig.Users[1].ID: duplicate "acme-alice"`}},
		{"duplicate username", func(c *IdPConfig) { c.Users[2].Username = "bob" },
			[]string{`IdPConfig.Users[2].Username: duplicate "bob"`}},
		{"empty password", func(c *IdPConfig) { c.Users[0].Password = "" }, []string{"IdPConfig.Users[0].Password:"}},
		{"colon in user ID", func(c *IdPConfig) { c.Users[0].ID = "acme:alice" }, []string{"IdPConfig.Users[0].ID:"}},
		{"duplicate client ID", func(c *IdPConfig) { c.Clients = append(c.Clients, c.Clients[0]) },
			[]string{`IdPConfig.Clients[1].ID: duplicate "web"`}},
		{"unknown auth method", func(c *IdPConfig) { c.Clients[0].AuthMethod = "private_key_jwt" },
			[]string{`IdPConfig.Clients[0].AuthMethod: unknown "private_key_jwt"`}},
		{"secret for public client", func(c *IdPConfig) { c.Clients[0].AuthMethod = AuthMethodNone },
			[]string{"IdPConfig.Clients[0].Secret: must be empty"}},
		{"no secret", func(c *IdPConfig) { c.Clients[0].Secret = "" }, []string{"IdPConfig.Clients[0].Secret: must not be empty"}},
		{"no redirect URIs", func(c *IdPConfig) { c.Clients[0].RedirectURIs = nil }, []string{"IdPConfig.Clients[0].RedirectURIs:"}},
		{"relative redirect URI", func(c *IdPConfig) { c.Clients[0].RedirectURIs = []string{"/cb"} },
			[]string{"IdPConfig.Clients[0].RedirectURIs[0]:"}},
		{"bad post-logout URI", func(c *IdPConfig) { c.Clients[0].PostLogoutRedirectURIs = []string{"x#y"} },
			[]string{"IdPConfig.Clients[0].PostLogoutRedirectURIs[0]:"}},
		{"all at once", func(c *IdPConfig) { c.Issuer, c.Clients[0].ID, c.Users[0].ID = "", "", "" },
			[]string{"IdPConfig.Issuer:", "IdPConfig.Clients[0].ID:", "IdPConfig.Users[0].ID:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok()
			tt.change(&cfg)
			_, err := NewIdP(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), "demo: "+want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
	if _, err := NewIdP(ok()); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestEndSession(t *testing.T) {
	const afterLogout = "http://app.test/signed-out"
	clients := []Client{{ID: "web", Secret: webSecret, RedirectURIs: []string{redirectURI},
		PostLogoutRedirectURIs: []string{afterLogout}}}
	srv := startIdP(t, IdPConfig{Clients: clients})
	relp := newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, "openid")
	tokens, _ := codeFlow(t, srv, relp, "alice")

	tests := []struct{ name, redirect, want string }{
		{"registered post_logout_redirect_uri", afterLogout, afterLogout + "?state=bye"},
		{"none given", "", "/logged-out?state=bye"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"id_token_hint": {tokens.IDToken}, "client_id": {"web"}, "state": {"bye"}}
			if tt.redirect != "" {
				q.Set("post_logout_redirect_uri", tt.redirect)
			}
			resp, _ := get(t, noRedirects(srv), srv.URL+"/end_session?"+q.Encode())
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tt.want {
				t.Fatalf("status %d, Location %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}

	resp, body := get(t, srv.Client(), srv.URL+"/logged-out")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Demo identity provider — not for production") {
		t.Errorf("logged-out page: status %d, body %s", resp.StatusCode, body)
	}
}

func TestIDTokenLifetime(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{{0, time.Hour}, {10 * time.Minute, 10 * time.Minute}} {
		srv := startIdP(t, IdPConfig{IDTokenLifetime: tt.set})
		tokens, _ := codeFlow(t, srv, newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, "openid"), "alice")
		c := tokens.IDTokenClaims
		if got := c.GetExpiration().Sub(c.GetIssuedAt()); got < tt.want-2*time.Second || got > tt.want+2*time.Second {
			t.Errorf("IDTokenLifetime %v: exp-iat = %v, want %v", tt.set, got, tt.want)
		}
	}
}
