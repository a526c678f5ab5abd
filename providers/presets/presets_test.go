package presets

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

const (
	tenantA = "11111111-1111-1111-1111-111111111111"
	tenantB = "22222222-2222-2222-2222-222222222222"
	tenantC = "33333333-3333-3333-3333-333333333333"
)

// fakeClient is the broker's client at every fake IdP of these tests.
func fakeClient(id string) fakeidp.Client {
	return fakeidp.Client{ID: "broker-" + id, Secret: "secret-" + id, RedirectURI: "https://auth.example.com/oauth2/callback/" + id}
}

// presetConfig is a preset's configuration for fakeClient(id).
func presetConfig(id, typ string) providers.Config {
	c := fakeClient(id)
	return providers.Config{ID: id, Type: typ, ClientID: c.ID, ClientSecret: c.Secret}
}

func openPresetForTest(t *testing.T, cfg providers.Config, opts providers.Options) providers.Provider {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	p, err := testTypes().Open(cfg, opts)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.ID, err)
	}
	return p
}

// loginAt runs one login through p at a fake IdP that signs in the user
// whose login is hint: the authorization URL, the IdP's redirect back, and
// the exchange. It also returns the authorization URL's query.
func loginAt(t *testing.T, p providers.Provider, hint string) (*providers.Result, url.Values, error) {
	t.Helper()
	ctx := context.Background()
	req := providers.AuthRequest{State: "state-" + hint, Nonce: "nonce-" + hint, Verifier: oauth2.GenerateVerifier(),
		RedirectURI: "https://auth.example.com/oauth2/callback/" + p.ID(), LoginHint: hint}
	authURL, err := p.AuthCodeURL(ctx, req)
	if err != nil {
		t.Fatalf("AuthCodeURL: %v", err)
	}
	au, _ := url.Parse(authURL)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), req.RedirectURI+"?") {
		t.Fatalf("authorization: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != req.State {
		t.Fatalf("state %q came back as %q", req.State, loc.Query().Get("state"))
	}
	res, err := p.Exchange(ctx, providers.Callback{Params: loc.Query(), Nonce: req.Nonce, Verifier: req.Verifier, RedirectURI: req.RedirectURI})
	return res, au.Query(), err
}

func TestPresetConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  providers.Config
		want []string // each must be in the error; none: valid
	}{
		{"github, five lines", providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s"}, nil},
		{"google", providers.Config{ID: "g", Type: providers.TypeGoogle, ClientID: "c", ClientSecret: "s", HostedDomains: []string{"example.com"}}, nil},
		{"entra single tenant", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: tenantA, ClientID: "c", ClientSecret: "s"}, nil},
		{"entra multi-tenant", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "organizations", Tenants: []string{tenantA}, ClientID: "c", ClientSecret: "s"}, nil},
		{"entra consumers", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "consumers", ClientID: "c", ClientSecret: "s"}, nil},
		{"gitlab", providers.Config{ID: "gl", Type: providers.TypeGitLab, ClientID: "c", ClientSecret: "s"}, nil},
		{"keycloak", providers.Config{ID: "kc", Type: providers.TypeKeycloak, Issuer: "https://kc.example.com/realms/main", ClientID: "c", ClientSecret: "s"}, nil},
		{"okta", providers.Config{ID: "okta", Type: providers.TypeOkta, Issuer: "https://acme.okta.com", ClientID: "c", ClientSecret: "s"}, nil},

		{"unknown type", providers.Config{ID: "x", Type: "githb", ClientID: "c", ClientSecret: "s"},
			[]string{`type: "githb" is not one of oidc, oauth2, `}},
		{"entra without tenant", providers.Config{ID: "e", Type: providers.TypeEntra, ClientID: "c", ClientSecret: "s"}, []string{"tenant: is required"}},
		{"entra tenant as a domain", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "contoso.onmicrosoft.com", ClientID: "c", ClientSecret: "s"},
			[]string{`tenant: "contoso.onmicrosoft.com" must be the directory (tenant) id`}},
		{"entra multi-tenant without tenants", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "common", ClientID: "c", ClientSecret: "s"},
			[]string{"tenants: is required with tenant common"}},
		{"entra tenants with one tenant", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: tenantA, Tenants: []string{tenantB}, ClientID: "c", ClientSecret: "s"},
			[]string{"tenants: is only used with tenant organizations or common"}},
		{"entra bad tenants, overage, issuer, graph_url", providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "organizations", Tenants: []string{"contoso"},
			GroupOverage: "all", Issuer: "https://login.microsoftonline.com/x/v2.0", GraphURL: "ftp://graph", ClientID: "c", ClientSecret: "s"},
			[]string{`tenants[0]: "contoso" is not a tenant id`, `group_overage: "all" is not one of ids, names, off`,
				"issuer: is set by the entra preset", `graph_url: "ftp://graph" must be an https URL`}},
		{"github: login as subject", providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s", Claims: providers.ClaimsConfig{Subject: "login"}},
			[]string{`claims.subject: "login": the github preset identifies users by their numeric id`}},
		{"github: bad org, bad base_url", providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s", Orgs: []string{"acme corp"}, BaseURL: "http://ghe.example.com"},
			[]string{`orgs[0]: "acme corp" is neither an organisation`, `base_url: "http://ghe.example.com" must be an https URL`}},
		{"github: userinfo_endpoint elsewhere", providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s", UserinfoEndpoint: "https://api.github.com/users/me"},
			[]string{`userinfo_endpoint: "https://api.github.com/users/me" must be the GitHub API's /user`}},
		{"google: bad hosted domain", providers.Config{ID: "g", Type: providers.TypeGoogle, ClientID: "c", ClientSecret: "s", HostedDomains: []string{"@example.com"}},
			[]string{`hosted_domains[0]: "@example.com" is not a domain`}},
		{"keycloak: no issuer", providers.Config{ID: "kc", Type: providers.TypeKeycloak, ClientID: "c", ClientSecret: "s"}, []string{"issuer: is required"}},
		{"keycloak: not a realm URL", providers.Config{ID: "kc", Type: providers.TypeKeycloak, Issuer: "https://kc.example.com", ClientID: "c", ClientSecret: "s"},
			[]string{`issuer: "https://kc.example.com" must be the realm's URL`}},
		{"okta: no issuer", providers.Config{ID: "o", Type: providers.TypeOkta, ClientID: "c", ClientSecret: "s"}, []string{"issuer: is required"}},
		{"gitlab: base_url and issuer", providers.Config{ID: "gl", Type: providers.TypeGitLab, BaseURL: "https://gitlab.example.com", Issuer: "https://gitlab.example.com", ClientID: "c", ClientSecret: "s"},
			[]string{"issuer: set base_url or issuer, not both"}},
		{"preset fields on other types", providers.Config{ID: "x", Issuer: "https://idp.example.com", ClientID: "c", ClientSecret: "s",
			Orgs: []string{"acme"}, HostedDomains: []string{"example.com"}, Tenant: tenantA, BaseURL: "https://x.example.com"},
			[]string{"orgs: is only used by providers of type github", "hosted_domains: is only used by providers of type google",
				"tenant: is only used by providers of type entra", "base_url: is only used by providers of type github, gitlab, entra"}},
		{"oauth2 endpoints on an OpenID preset", providers.Config{ID: "g", Type: providers.TypeGoogle, ClientID: "c", ClientSecret: "s", TokenEndpoint: "https://x.example.com/token"},
			[]string{"token_endpoint: is only used by providers of type oauth2"}},
		{"generic checks still apply", providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: ""}, []string{"client_id: is required", "client_secret: is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validate(c.cfg)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
}

// TestPresetProblemsReportedAtOnce: the registry names each problem by its
// position and field, all in one error.
func TestPresetProblemsReportedAtOnce(t *testing.T) {
	_, err := providers.NewRegistry(testTypes(), []providers.Config{
		{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s"},
		{ID: "g", Type: providers.TypeGoogle, ClientID: "c", ClientSecret: "s", Orgs: []string{"acme"}},
		{ID: "e", Type: providers.TypeEntra, Tenant: "organizations", ClientID: "c", ClientSecret: "s"},
		{ID: "k", Type: "keycloack", ClientID: "c", ClientSecret: "s"},
	}, providers.Options{Logger: quiet})
	for _, want := range []string{"providers[1].orgs: is only used by providers of type github",
		"providers[2].tenants: is required with tenant organizations", `providers[3].type: "keycloack" is not one of`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestResolve(t *testing.T) {
	gh := Resolve(providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s"})
	if gh.Type != providers.TypeOAuth2 || gh.Name != "GitHub" || gh.AuthorizationEndpoint != "https://github.com/login/oauth/authorize" ||
		gh.TokenEndpoint != "https://github.com/login/oauth/access_token" || gh.UserinfoEndpoint != "https://api.github.com/user" ||
		gh.Claims.Subject != "id" || gh.Claims.Username != "login" || !slices.Equal(gh.Scopes, []string{"read:user", "user:email", "read:org"}) {
		t.Errorf("github: %+v", gh)
	}
	ghe := Resolve(providers.Config{ID: "ghe", Type: providers.TypeGitHub, BaseURL: "https://ghe.example.com/"})
	if ghe.AuthorizationEndpoint != "https://ghe.example.com/login/oauth/authorize" || ghe.UserinfoEndpoint != "https://ghe.example.com/api/v3/user" {
		t.Errorf("GitHub Enterprise Server: %+v", ghe)
	}
	// Generic settings win; auth_params merge, the configuration's winning.
	g := Resolve(providers.Config{ID: "g", Type: providers.TypeGoogle, Name: "Corp", Scopes: []string{"openid", "email"},
		AuthParams: map[string]string{"prompt": "select_account"}, HostedDomains: []string{"example.com"}})
	if g.Name != "Corp" || g.Issuer != "https://accounts.google.com" || !slices.Equal(g.Scopes, []string{"openid", "email"}) ||
		g.AuthParams["prompt"] != "select_account" || g.AuthParams["access_type"] != "offline" || g.AuthParams["hd"] != "example.com" {
		t.Errorf("google: %+v", g)
	}
	e := Resolve(providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "organizations", Tenants: []string{tenantA}, ClientID: "c"})
	if e.Issuer != "https://login.microsoftonline.com/{tenantid}/v2.0" || e.Claims.Source != providers.SourceIDToken || e.Userinfo != "never" ||
		!slices.Equal(e.Claims.ExtraGroups, []providers.GroupClaim{{Claim: "roles", Prefix: "role:"}}) {
		t.Errorf("entra: %+v", e)
	}
	kc := Resolve(providers.Config{ID: "kc", Type: providers.TypeKeycloak, Issuer: "https://kc.example.com/realms/main", ClientID: "web",
		Claims: providers.ClaimsConfig{ExtraGroups: []providers.GroupClaim{}}})
	if kc.Claims.ExtraGroups == nil || len(kc.Claims.ExtraGroups) != 0 {
		t.Errorf("keycloak: an explicit empty extra_groups must replace the preset's: %+v", kc.Claims.ExtraGroups)
	}
	if ok := (providers.Config{ID: "o", Type: providers.TypeOIDC, Issuer: "https://x", Scopes: []string{"openid"}}); !reflect.DeepEqual(Resolve(ok), ok) {
		t.Error("a generic configuration changed")
	}
}

func TestPresetSettings(t *testing.T) {
	base, settings, ok := Settings(providers.Config{ID: "gh", Type: providers.TypeGitHub, ClientID: "c", ClientSecret: "s",
		Scopes: []string{"read:user", "user:email"}, Orgs: []string{"acme"}})
	if !ok || base != providers.TypeOAuth2 {
		t.Fatalf("base %q ok %v", base, ok)
	}
	got := map[string]Setting{}
	for _, s := range settings {
		got[s.Key] = s
	}
	want := map[string]Setting{
		"userinfo_endpoint": {Key: "userinfo_endpoint", Value: "https://api.github.com/user"},
		"scopes":            {Key: "scopes", Value: "read:user user:email", Configured: true},
		"claims.subject":    {Key: "claims.subject", Value: "id"},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %+v, want %+v", k, got[k], w)
		}
	}
	if a := got["admission"]; !a.Configured || !strings.Contains(a.Value, "members of acme only") {
		t.Errorf("admission = %+v", a)
	}
	_, settings, _ = Settings(providers.Config{ID: "e", Type: providers.TypeEntra, Tenant: "organizations", Tenants: []string{tenantA}})
	if !slices.ContainsFunc(settings, func(s Setting) bool {
		return s.Key == "discovery" && s.Value == "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
	}) {
		t.Errorf("entra settings without its discovery URL: %+v", settings)
	}
	if _, _, ok := Settings(providers.Config{ID: "x", Issuer: "https://x"}); ok {
		t.Error("a generic type has preset settings")
	}
}

func TestNotAllowedIsTyped(t *testing.T) {
	err := hostedDomain("g", []string{"example.com"}, "evil.example")
	var na *providers.NotAllowedError
	if !errors.As(err, &na) || na.Provider != "g" || !strings.Contains(na.Reason, `hd "evil.example"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestPresetAPIAnswersBounded: an API answer is read up to maxAPIPage
// bytes; a longer one fails the call, and the error carries the status,
// never the body.
func TestPresetAPIAnswersBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(`{"login":"secret-in-the-body"},`)
		_, _ = w.Write([]byte("["))
		for range 4 * maxAPIPage / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
	}))
	defer srv.Close()
	_, _, err := pagedList(context.Background(), srv.Client(), srv.URL, apiRequest{url: srv.URL + "/user/orgs?per_page=100", token: "t"},
		githubPage[githubOrgItem])
	if err == nil || strings.Contains(err.Error(), "secret-in-the-body") || !strings.Contains(err.Error(), "/user/orgs: status 200") {
		t.Fatalf("err = %v", err)
	}
}

func TestNextLink(t *testing.T) {
	cases := map[string]string{
		`<https://api.github.com/user/orgs?page=2>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last"`: "https://api.github.com/user/orgs?page=2",
		`<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next"`:                 "https://api.github.com/x?page=3",
		`<https://a.example/x>; rel="last"`:      "",
		`https://a.example/x; rel="next"`:        "",
		`<https://a.example/x>; rel="next last"`: "https://a.example/x",
		``:                                       "",
	}
	for h, want := range cases {
		if got := nextLink(http.Header{"Link": {h}}); got != want {
			t.Errorf("nextLink(%q) = %q, want %q", h, got, want)
		}
	}
	for next, ok := range map[string]bool{"https://api.example/v1/x?page=2": true, "https://API.example/v1/y": true,
		"http://api.example/v1/x": false, "https://api.example.evil/v1/x": false, "https://api.example/v2/x": false,
		"https://u:p@api.example/v1/x": false, "https://api.example/v1": false} {
		if sameAPI("https://api.example/v1", next) != ok {
			t.Errorf("sameAPI(%q) = %v", next, !ok)
		}
	}
}
