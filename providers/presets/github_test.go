package presets

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// octocat is a GitHub user in three organisations and three teams, with a
// verified primary address, another verified one, and a public address
// they merely typed.
var octocat = fakeidp.GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat", Email: "ceo@victim.example",
	Emails: []fakeidp.GitHubEmail{{Email: "octo@other.example", Verified: true}, {Email: "octocat@github.example", Primary: true, Verified: true}},
	Orgs:   []string{"Acme", "github", "octo-labs"},
	Teams:  []fakeidp.GitHubTeam{{Org: "Acme", Slug: "platform"}, {Org: "github", Slug: "security"}, {Org: "octo-labs", Slug: "bots"}}}

// githubProvider opens the github preset against the fake: GitHub
// Enterprise Server paths through base_url, github.com's through the
// endpoint settings (the API is where userinfo_endpoint is).
func githubProvider(t *testing.T, g *fakeidp.GitHub, edit func(*providers.Config)) providers.Provider {
	t.Helper()
	cfg := presetConfig("gh", providers.TypeGitHub)
	if g.Enterprise {
		cfg.BaseURL = g.URL
	} else {
		cfg.AuthorizationEndpoint = g.URL + "/login/oauth/authorize"
		cfg.TokenEndpoint = g.URL + "/login/oauth/access_token"
		cfg.UserinfoEndpoint = g.URL + "/user"
	}
	if edit != nil {
		edit(&cfg)
	}
	return openPresetForTest(t, cfg, providers.Options{})
}

func newGitHub(t *testing.T, enterprise bool, users ...fakeidp.GitHubUser) *fakeidp.GitHub {
	t.Helper()
	g := fakeidp.NewGitHub(fakeClient("gh"), enterprise)
	t.Cleanup(g.Close)
	for _, u := range users {
		g.AddUser(u)
	}
	g.MaxPerPage(2) // three organisations and three teams span two pages each
	return g
}

func TestGitHubPreset(t *testing.T) {
	for _, enterprise := range []bool{false, true} {
		name := map[bool]string{false: "github.com", true: "Enterprise Server"}[enterprise]
		t.Run(name, func(t *testing.T) {
			g := newGitHub(t, enterprise, octocat)
			res, q, err := loginAt(t, githubProvider(t, g, nil), "octocat")
			if err != nil {
				t.Fatal(err)
			}
			id := res.Identity
			if id.Subject != "583231" || id.PreferredUsername != "octocat" || id.Name != "The Octocat" {
				t.Errorf("identity %+v", id)
			}
			if id.Email != "octocat@github.example" || !id.EmailVerified {
				t.Errorf("email %q verified %v, want the primary verified address", id.Email, id.EmailVerified)
			}
			want := []string{"Acme", "github", "octo-labs", "Acme/platform", "github/security", "octo-labs/bots"}
			if !slices.Equal(id.Groups, want) || id.GroupsIncomplete {
				t.Errorf("groups %v (incomplete %v), want %v", id.Groups, id.GroupsIncomplete, want)
			}
			if q.Get("scope") != "read:user user:email read:org" || q.Get("code_challenge_method") != "S256" {
				t.Errorf("authorization request %v", q)
			}
			calls := g.Calls()
			prefix := map[bool]string{false: "/user", true: "/api/v3/user"}[enterprise]
			for _, c := range calls {
				if !strings.HasPrefix(c, prefix) {
					t.Errorf("API call %q outside %s", c, prefix)
				}
			}
			if !slices.Contains(calls, prefix+"/orgs?page=2&per_page=100") || !slices.Contains(calls, prefix+"/teams?page=2&per_page=100") {
				t.Errorf("second pages not read: %v", calls)
			}
		})
	}
}

func TestGitHubEmail(t *testing.T) {
	unverified := octocat
	unverified.Login = "unverified"
	unverified.Emails = []fakeidp.GitHubEmail{{Email: "new@github.example", Primary: true}, {Email: "old@github.example", Verified: true}}
	g := newGitHub(t, false, octocat, unverified)
	p := githubProvider(t, g, nil)

	t.Run("primary address unverified", func(t *testing.T) {
		res, _, err := loginAt(t, p, "unverified")
		if err != nil {
			t.Fatal(err)
		}
		if id := res.Identity; id.Email != "new@github.example" || id.EmailVerified || id.VerifiedEmail() != "" {
			t.Errorf("email %q verified %v: an unverified primary address must not count as verified", id.Email, id.EmailVerified)
		}
	})
	t.Run("/user/emails refused (no permission)", func(t *testing.T) {
		g.EmailsAnswer(http.StatusForbidden)
		defer g.EmailsAnswer(0)
		res, _, err := loginAt(t, p, "octocat")
		if err != nil {
			t.Fatal(err)
		}
		if id := res.Identity; id.Email != "ceo@victim.example" || id.EmailVerified {
			t.Errorf("email %q verified %v: /user's public address is whatever the user typed", id.Email, id.EmailVerified)
		}
	})
}

func TestGitHubOrgs(t *testing.T) {
	outsider := fakeidp.GitHubUser{ID: 7, Login: "outsider", Emails: []fakeidp.GitHubEmail{{Email: "o@x.example", Primary: true, Verified: true}},
		Orgs: []string{"other", "acme-evil"}, Teams: []fakeidp.GitHubTeam{{Org: "other", Slug: "platform"}}}
	g := newGitHub(t, false, octocat, outsider)
	cases := []struct {
		name, user string
		orgs       []string
		want       []string // nil: refused
	}{
		{"member of a listed organisation", "octocat", []string{"acme"}, []string{"Acme", "Acme/platform"}},
		{"member of a listed team", "octocat", []string{"acme/platform", "nope"}, []string{"Acme", "Acme/platform"}},
		{"several listed organisations", "octocat", []string{"ACME", "octo-labs"}, []string{"Acme", "octo-labs", "Acme/platform", "octo-labs/bots"}},
		{"not in the listed team", "octocat", []string{"acme/security"}, nil},
		{"outside the listed organisations", "outsider", []string{"acme"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := githubProvider(t, g, func(cfg *providers.Config) { cfg.Orgs = c.orgs })
			res, _, err := loginAt(t, p, c.user)
			var na *providers.NotAllowedError
			switch {
			case c.want == nil && !errors.As(err, &na):
				t.Fatalf("err = %v, want a NotAllowedError", err)
			case c.want == nil:
				if !strings.Contains(na.Reason, "none of orgs") {
					t.Errorf("reason %q", na.Reason)
				}
			case err != nil:
				t.Fatal(err)
			case !slices.Equal(res.Identity.Groups, c.want):
				t.Errorf("groups %v, want %v (only the listed organisations')", res.Identity.Groups, c.want)
			}
		})
	}
}

// TestGitHubPagingBounds: a list is read for at most ten pages, a next link
// to another host is not followed (the token would go there), and both
// leave the groups marked incomplete.
func TestGitHubPagingBounds(t *testing.T) {
	many := octocat
	many.Login = "many"
	many.Orgs = nil
	for i := range 25 {
		many.Orgs = append(many.Orgs, "org-"+string(rune('a'+i)))
	}
	g := newGitHub(t, false, many, octocat)
	p := githubProvider(t, g, nil)
	res, _, err := loginAt(t, p, "many")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Identity.Groups) != 20+3 || !res.Identity.GroupsIncomplete {
		t.Errorf("%d groups, incomplete %v: want 10 pages of 2 organisations and the teams, incomplete", len(res.Identity.Groups), res.Identity.GroupsIncomplete)
	}
	orgCalls := 0
	for _, c := range g.Calls() {
		if strings.HasPrefix(c, "/user/orgs") {
			orgCalls++
		}
	}
	if orgCalls != maxAPIPages {
		t.Errorf("%d pages of /user/orgs read, want %d", orgCalls, maxAPIPages)
	}

	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"login":"injected"}]`))
	}))
	defer elsewhere.Close()
	g.LinksTo(elsewhere.URL)
	res, _, err = loginAt(t, p, "octocat")
	if err != nil {
		t.Fatal(err)
	}
	if leaked.Load() != 0 || slices.Contains(res.Identity.Groups, "injected") {
		t.Errorf("a Link to another host was followed (token sent %d times): groups %v", leaked.Load(), res.Identity.Groups)
	}
	if !slices.Equal(res.Identity.Groups, []string{"Acme", "github", "Acme/platform", "github/security"}) || !res.Identity.GroupsIncomplete {
		t.Errorf("groups %v incomplete %v: want the first pages, marked incomplete", res.Identity.Groups, res.Identity.GroupsIncomplete)
	}
}

// TestGitHubAPIFailure: with orgs, an API that fails refuses the login
// (membership cannot be shown); without, the groups are marked incomplete.
func TestGitHubAPIFailure(t *testing.T) {
	g := newGitHub(t, false, octocat)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/user/") && r.URL.Path != "/user/emails" {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>secret-body-of-the-idp</html>"))
			return
		}
		// /user and /user/emails from the fake, as the real API
		req := r.Clone(r.Context())
		g.ServeHTTP(w, req)
	}))
	defer api.Close()
	open := func(orgs []string) providers.Provider {
		return githubProvider(t, g, func(c *providers.Config) { c.UserinfoEndpoint = api.URL + "/user"; c.Orgs = orgs })
	}
	res, _, err := loginAt(t, open(nil), "octocat")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Identity.GroupsIncomplete || len(res.Identity.Groups) != 0 || !res.Identity.EmailVerified {
		t.Errorf("identity %+v: want no groups, incomplete, the email still read", res.Identity)
	}
	_, _, err = loginAt(t, open([]string{"acme"}), "octocat")
	var ue *providers.UnavailableError
	if !errors.As(err, &ue) || strings.Contains(err.Error(), "secret-body") || !strings.Contains(err.Error(), "status 502") {
		t.Errorf("err = %v: want unavailable, with the status and without the body", err)
	}
}
