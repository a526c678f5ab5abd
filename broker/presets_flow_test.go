package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Full logins through the broker with each IdP preset, against in-process
// fakes of the IdPs' real API shapes (internal/testsupport/fakeidp), and the refusals the
// presets add.

const (
	presetTenantA = "11111111-1111-1111-1111-111111111111"
	presetTenantB = "22222222-2222-2222-2222-222222222222"
)

// presetIdPs are the fakes behind the preset providers of an env.
type presetIdPs struct {
	github, ghes       *fakeidp.GitHub
	google, gitlab, kc *fakeidp.OP
	okta, entra        *fakeidp.OP
	graph              *fakeidp.Graph
}

func fakeClientFor(brokerURL, id string) fakeidp.Client {
	return fakeidp.Client{ID: "broker-" + id, Secret: "secret-" + id, RedirectURI: brokerURL + "/oauth2/callback/" + id}
}

// withPresets adds one provider per preset, each at its fake IdP with its
// users: on github.com and a GitHub Enterprise Server (orgs: acme), Google
// (hosted_domains: example.com), Entra ID (organizations, tenants: A), a
// self-managed GitLab, a Keycloak realm and an Okta org.
func withPresets(t *testing.T, f *presetIdPs) envOption {
	return withProviders(func(b string) []providers.Config {
		conf := func(id, typ string) providers.Config {
			c := fakeClientFor(b, id)
			return providers.Config{ID: id, Type: typ, ClientID: c.ID, ClientSecret: c.Secret}
		}
		octo := fakeidp.GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat", Email: "ceo@victim.example",
			Emails: []fakeidp.GitHubEmail{{Email: "octocat@github.example", Primary: true, Verified: true}},
			Orgs:   []string{"acme", "octo-labs"}, Teams: []fakeidp.GitHubTeam{{Org: "acme", Slug: "platform"}}}
		unverified := fakeidp.GitHubUser{ID: 99, Login: "newbie", Email: "boss@victim.example",
			Emails: []fakeidp.GitHubEmail{{Email: "boss@victim.example", Primary: true}}, Orgs: []string{"acme"}}
		outsider := fakeidp.GitHubUser{ID: 7, Login: "outsider", Emails: []fakeidp.GitHubEmail{{Email: "o@x.example", Primary: true, Verified: true}},
			Orgs: []string{"acme-evil"}}

		f.github = fakeidp.NewGitHub(fakeClientFor(b, "github"), false)
		f.ghes = fakeidp.NewGitHub(fakeClientFor(b, "ghes"), true)
		for _, g := range []*fakeidp.GitHub{f.github, f.ghes} {
			t.Cleanup(g.Close)
			g.MaxPerPage(1) // every list spans pages
			for _, u := range []fakeidp.GitHubUser{octo, unverified, outsider} {
				g.AddUser(u)
			}
		}
		gh := conf("github", providers.TypeGitHub)
		gh.AuthorizationEndpoint, gh.TokenEndpoint, gh.UserinfoEndpoint = f.github.URL+"/login/oauth/authorize",
			f.github.URL+"/login/oauth/access_token", f.github.URL+"/user"
		ghes := conf("ghes", providers.TypeGitHub)
		ghes.BaseURL, ghes.Orgs = f.ghes.URL, []string{"acme"}

		f.google = fakeidp.NewGoogle(fakeClientFor(b, "google"))
		f.google.AddUser(fakeidp.User{Login: "ann", Claims: map[string]any{"sub": "1001", "email": "ann@example.com", "email_verified": true, "hd": "example.com"}})
		f.google.AddUser(fakeidp.User{Login: "gmail", Claims: map[string]any{"sub": "1002", "email": "ann@example.com.gmail.example", "email_verified": true}})
		google := conf("google", providers.TypeGoogle)
		google.Issuer, google.HostedDomains = f.google.URL, []string{"example.com"}

		f.entra = fakeidp.NewEntra(fakeClientFor(b, "entra"))
		f.graph = fakeidp.NewGraph(f.entra)
		entraUser := func(login, tid string, more map[string]any) fakeidp.User {
			c := map[string]any{"sub": "pw-" + login, "oid": "oid-" + login, "tid": tid, "email": login + "@contoso.example",
				"preferred_username": login + "@contoso.example", "xms_edov": true, "roles": []string{"Reader"}}
			for k, v := range more {
				c[k] = v
			}
			return fakeidp.User{Login: login, Claims: c, Groups: []fakeidp.Group{{ID: "g-1"}, {ID: "g-2"}}}
		}
		f.entra.AddUser(entraUser("alice", presetTenantA, map[string]any{"groups": []string{"g-1"}}))
		f.entra.AddUser(entraUser("olga", presetTenantA, fakeidp.EntraOverage(presetTenantA, "oid-olga")))
		f.entra.AddUser(entraUser("mallory", presetTenantB, nil))
		entra := conf("entra", providers.TypeEntra)
		entra.Tenant, entra.Tenants, entra.BaseURL, entra.GraphURL = "organizations", []string{presetTenantA}, f.entra.URL, f.graph.URL

		f.gitlab = fakeidp.NewGitLab(fakeClientFor(b, "gitlab"))
		f.gitlab.AddUser(fakeidp.User{Login: "glen", Claims: map[string]any{"sub": "4242", "email": "glen@example.com", "email_verified": true,
			"nickname": "glen", "groups_direct": []string{"acme/platform"}},
			Userinfo: map[string]any{"nickname": "glen", "email": "glen@example.com", "email_verified": true, "groups": []string{"acme", "acme/platform"}}})
		gitlab := conf("gitlab", providers.TypeGitLab)
		gitlab.BaseURL = f.gitlab.URL

		f.kc = fakeidp.NewKeycloak(fakeClientFor(b, "keycloak"), "main")
		f.kc.AddUser(fakeidp.User{Login: "kate", Claims: map[string]any{"sub": "kc-kate", "preferred_username": "kate",
			"email": "kate@example.com", "email_verified": true, "realm_access": map[string]any{"roles": []string{"admin"}},
			"resource_access": map[string]any{"broker-keycloak": map[string]any{"roles": []string{"editor"}}}}})
		kc := conf("keycloak", providers.TypeKeycloak)
		kc.Issuer = f.kc.URL + "/realms/main"

		f.okta = fakeidp.NewOkta(fakeClientFor(b, "okta"), "default")
		f.okta.AddUser(fakeidp.User{Login: "otto", Claims: map[string]any{"sub": "00u1", "email": "otto@example.com",
			"email_verified": true, "groups": []string{"Everyone", "Engineering"}}})
		okta := conf("okta", providers.TypeOkta)
		okta.Issuer = f.okta.Issuer("")

		for _, op := range []*fakeidp.OP{f.google, f.entra, f.gitlab, f.kc, f.okta} {
			t.Cleanup(op.Close)
		}
		t.Cleanup(f.graph.Close)
		return []providers.Config{gh, ghes, google, entra, gitlab, kc, okta}
	})
}

// presetLogin signs the env's browser in at provider as the fake IdP's
// user hint, and returns the callback's response.
func (e *env) presetLogin(provider, hint string) *http.Response {
	e.t.Helper()
	resp := e.get(e.broker.URL + "/oauth2/start/" + provider + "?rd=%2Fhello&login_hint=" + url.QueryEscape(hint))
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d %s", resp.StatusCode, body(resp))
	}
	resp = e.get(resp.Header.Get("Location")) // the fake IdP signs the user in at once
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, e.broker.URL+"/oauth2/callback/"+provider+"?") {
		e.t.Fatalf("at the IdP: %d, Location %q", resp.StatusCode, cb)
	}
	return e.get(cb)
}

func TestLoginThroughEachPreset(t *testing.T) {
	f := &presetIdPs{}
	e := newEnv(t, withPresets(t, f))
	cases := []struct {
		provider, user string
		want           map[string]string // relayed headers; "" must be absent
	}{
		{"github", "octocat", map[string]string{HeaderUser: "github:583231", HeaderPreferredUsername: "octocat",
			HeaderEmail: "octocat@github.example", HeaderGroups: "acme,octo-labs,acme/platform"}},
		{"ghes", "octocat", map[string]string{HeaderUser: "ghes:583231", HeaderGroups: "acme,acme/platform"}},
		{"google", "ann", map[string]string{HeaderUser: "google:1001", HeaderEmail: "ann@example.com"}},
		{"entra", "alice", map[string]string{HeaderUser: "entra:pw-alice", HeaderEmail: "alice@contoso.example",
			HeaderPreferredUsername: "alice@contoso.example", HeaderGroups: "g-1,role:Reader"}},
		{"entra", "olga", map[string]string{HeaderUser: "entra:pw-olga", HeaderGroups: "g-1,g-2,role:Reader"}},
		{"gitlab", "glen", map[string]string{HeaderUser: "gitlab:4242", HeaderPreferredUsername: "glen",
			HeaderEmail: "glen@example.com", HeaderGroups: "acme,acme/platform"}},
		{"keycloak", "kate", map[string]string{HeaderUser: "keycloak:kc-kate", HeaderGroups: "role:admin,role:broker-keycloak:editor"}},
		{"okta", "otto", map[string]string{HeaderUser: "okta:00u1", HeaderGroups: "Everyone,Engineering"}},
	}
	for _, c := range cases {
		t.Run(c.provider+" "+c.user, func(t *testing.T) {
			e.client = newBrowser()
			if resp := e.presetLogin(c.provider, c.user); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/hello" {
				t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
			}
			status, v := e.appView(e.client, "/hello", nil)
			if status != http.StatusOK {
				t.Fatalf("upstream: %d", status)
			}
			for k, w := range c.want {
				if got := v.Headers[k]; got != w {
					t.Errorf("%s = %q, want %q", k, got, w)
				}
			}
		})
	}
	if calls := f.graph.Calls(); len(calls) != 1 {
		t.Errorf("Graph calls %v: want one, for olga's overage", calls)
	}
	if reqs := f.google.AuthRequests(); len(reqs) == 0 || reqs[0].Get("access_type") != "offline" || reqs[0].Get("hd") != "example.com" {
		t.Errorf("Google authorization requests %v", reqs)
	}
}

// TestPresetRefusals: the users a preset does not admit get a 403 page and
// no session; an unverified GitHub address is not relayed.
func TestPresetRefusals(t *testing.T) {
	f := &presetIdPs{}
	e := newEnv(t, withPresets(t, f))
	cases := []struct{ name, provider, user, reason string }{
		{"GitHub user outside the allowed orgs", "ghes", "outsider", "not allowed: a member of none of orgs"},
		{"Entra ID token from a tenant not on the list", "entra", "mallory", "not allowed: tenant " + presetTenantB + " is not in tenants"},
		{"Google account outside the hosted domain", "google", "gmail", "not allowed: no hd claim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.client = newBrowser()
			resp := e.presetLogin(c.provider, c.user)
			e.refused(resp, http.StatusForbidden, c.reason)
			if b := body(resp); !strings.Contains(b, "may not sign in here") {
				t.Errorf("page: %s", b)
			}
		})
	}
	t.Run("unverified GitHub email not relayed", func(t *testing.T) {
		e.client = newBrowser()
		if resp := e.presetLogin("github", "newbie"); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d %s", resp.StatusCode, body(resp))
		}
		_, v := e.appView(e.client, "/hello", nil)
		if v.Headers[HeaderUser] != "github:99" {
			t.Fatalf("not signed in: %v", v.Headers)
		}
		if got, ok := v.Headers[HeaderEmail]; ok {
			t.Errorf("unverified email relayed: %q", got)
		}
		var info map[string]any
		_ = json.Unmarshal([]byte(body(e.get(e.broker.URL+"/oauth2/userinfo"))), &info)
		if info["email_verified"] != false {
			t.Errorf("userinfo %v", info)
		}
	})
	t.Run("Graph down: overage relayed as incomplete groups", func(t *testing.T) {
		f.graph.Fail(http.StatusServiceUnavailable)
		defer f.graph.Fail(0)
		e.client = newBrowser()
		if resp := e.presetLogin("entra", "olga"); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: %d %s", resp.StatusCode, body(resp))
		}
		var info map[string]any
		_ = json.Unmarshal([]byte(body(e.get(e.broker.URL+"/oauth2/userinfo"))), &info)
		if info["groups_incomplete"] != true || fmt.Sprint(info["groups"]) != "[role:Reader]" {
			t.Errorf("userinfo %v", info)
		}
		if !strings.Contains(e.logs.String(), "Microsoft Graph did not answer usably") {
			t.Error("the Graph failure was not logged")
		}
	})
}
