package presets

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// GitHub (type github): a plain OAuth2 provider over GitHub's REST API, on
// github.com or a GitHub Enterprise Server (base_url). The user is their
// numeric id, never the login, which they can change. The email is the
// primary address from /user/emails, verified only when GitHub says so;
// organisations and teams become groups ("org", "org/team"), and orgs
// admits only their members.
var githubPreset = preset{
	name: "GitHub",
	base: providers.TypeOAuth2,
	defaults: func(c providers.Config) providers.Config {
		web, api := githubEndpoints(c.BaseURL)
		return providers.Config{
			AuthorizationEndpoint: web + "/login/oauth/authorize",
			TokenEndpoint:         web + "/login/oauth/access_token",
			UserinfoEndpoint:      api + "/user",
			Scopes:                []string{"read:user", "user:email", "read:org"},
			Claims:                providers.ClaimsConfig{Subject: "id", Username: "login", Name: "name"},
		}
	},
	check: checkGitHub,
	hooks: func(c providers.Config, opts providers.Options) providers.Hooks {
		r := Resolve(c)
		g := &githubHooks{provider: c.ID, api: strings.TrimSuffix(r.UserinfoEndpoint, "/user"), log: opts.Logger,
			prefix: c.Claims.GroupPrefix, insecureEmail: c.Claims.InsecureAssumeEmailVerified}
		for _, o := range c.Orgs {
			g.orgs = append(g.orgs, strings.ToLower(o))
		}
		return providers.Hooks{Complete: g.complete}
	},
	notes: func(c providers.Config) []Setting {
		api := strings.TrimSuffix(c.UserinfoEndpoint, "/user")
		admission := "anyone with a GitHub account"
		if len(c.Orgs) > 0 {
			admission = "members of " + strings.Join(c.Orgs, ", ") + " only; only those organisations' groups are relayed"
		}
		return []Setting{
			{Key: "email", Value: "the primary address from " + api + "/user/emails, verified only when GitHub says so"},
			{Key: "groups", Value: fmt.Sprintf(`organisations and teams ("org", "org/team") from %s/user/orgs and /user/teams, at most %d each`, api, maxAPIItems)},
			{Key: "admission", Value: admission, Configured: len(c.Orgs) > 0},
		}
	},
}

// githubEndpoints are GitHub's web and API base URLs: github.com's, or a
// GitHub Enterprise Server's (<base>, <base>/api/v3).
func githubEndpoints(baseURL string) (web, api string) {
	if baseURL == "" {
		return "https://github.com", "https://api.github.com"
	}
	web = strings.TrimSuffix(baseURL, "/")
	return web, web + "/api/v3"
}

// githubOrg is an organisation login, optionally with a team slug.
var githubOrg = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$`)

func checkGitHub(c providers.Config) []error {
	var p problems
	p.checkBaseURL("base_url", c.BaseURL)
	for i, o := range c.Orgs {
		if !githubOrg.MatchString(o) {
			p.add(fmt.Sprintf("orgs[%d]", i), "%q is neither an organisation (acme) nor a team (acme/platform)", o)
		}
	}
	if c.Claims.Subject != "" && c.Claims.Subject != "id" {
		p.add("claims.subject", "%q: the github preset identifies users by their numeric id, which they cannot change", c.Claims.Subject)
	}
	if u := Resolve(c).UserinfoEndpoint; u != "" && !strings.HasSuffix(u, "/user") {
		p.add("userinfo_endpoint", "%q must be the GitHub API's /user: the preset reads /user/emails, /user/orgs and /user/teams beside it", u)
	}
	return p
}

// githubHooks is the GitHub preset's complete step.
type githubHooks struct {
	provider      string
	api           string   // the REST API's base URL, without a trailing slash
	orgs          []string // lower-cased; empty: everyone is admitted
	prefix        string   // claims.group_prefix
	insecureEmail bool     // claims.insecure_assume_email_verified
	log           *slog.Logger
}

func (g *githubHooks) request(path string, token string) apiRequest {
	return apiRequest{url: g.api + path, token: token, header: http.Header{
		"Accept": {"application/vnd.github+json"}, "X-Github-Api-Version": {"2022-11-28"}}}
}

// complete sets the email from /user/emails and the groups from the
// organisations and teams, and admits the user by orgs.
func (g *githubHooks) complete(ctx context.Context, l providers.Login, id *providers.Identity) error {
	g.email(ctx, l, id)
	groups, complete, err := g.groups(ctx, l)
	if err != nil {
		ae, _ := err.(*apiError)
		switch {
		case len(g.orgs) > 0 && ae != nil && ae.passing():
			return &providers.UnavailableError{Provider: g.provider, Err: fmt.Errorf("organisations and teams: %w", err)}
		case len(g.orgs) > 0:
			return fmt.Errorf("providers: %s: organisations and teams, needed by orgs: %w", g.provider, err)
		}
		g.log.Warn("github: organisations and teams unreadable; relaying the identity with groups_incomplete",
			"provider", g.provider, "sub", id.Subject, "error", err)
		complete = false
	}
	if len(g.orgs) > 0 {
		groups = slices.DeleteFunc(groups, func(grp string) bool { return !g.listedOrg(grp) })
		if !slices.ContainsFunc(groups, func(grp string) bool { return slices.Contains(g.orgs, strings.ToLower(grp)) }) {
			reason := "a member of none of orgs"
			if !complete {
				reason += " (as far as the first pages of their organisations and teams tell)"
			}
			return &providers.NotAllowedError{Provider: g.provider, Reason: reason}
		}
	}
	id.Groups = append(prefixed(g.prefix, groups), id.Groups...)
	id.GroupsIncomplete = id.GroupsIncomplete || !complete
	return nil
}

// listedOrg reports whether grp ("org" or "org/team") belongs to an
// organisation that orgs names.
func (g *githubHooks) listedOrg(grp string) bool {
	org, _, _ := strings.Cut(strings.ToLower(grp), "/")
	return slices.ContainsFunc(g.orgs, func(o string) bool {
		listed, _, _ := strings.Cut(o, "/")
		return listed == org
	})
}

type githubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// email replaces the public address of /user with the primary one of
// /user/emails, verified as GitHub says. When that cannot be read (no
// user:email scope, a GitHub App without the email permission), the
// address stays unverified.
func (g *githubHooks) email(ctx context.Context, l providers.Login, id *providers.Identity) {
	emails, _, err := pagedList(ctx, l.HTTPClient, g.api, g.request("/user/emails?per_page=100", l.AccessToken), githubPage[githubEmail])
	if err != nil {
		g.log.Warn("github: /user/emails unreadable; the email stays unverified", "provider", g.provider, "sub", id.Subject, "error", err)
		id.EmailVerified = g.insecureEmail
		return
	}
	id.EmailVerified = g.insecureEmail
	for _, e := range emails {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Verified || g.insecureEmail
			return
		}
	}
}

type githubOrgItem struct {
	Login string `json:"login"`
}

type githubTeam struct {
	Slug         string        `json:"slug"`
	Organization githubOrgItem `json:"organization"`
}

// groups lists the user's organisations ("org") and teams ("org/team").
// complete is false when a list was cut at its bounds.
func (g *githubHooks) groups(ctx context.Context, l providers.Login) ([]string, bool, error) {
	orgs, orgsComplete, err := pagedList(ctx, l.HTTPClient, g.api, g.request("/user/orgs?per_page=100", l.AccessToken), githubPage[githubOrgItem])
	if err != nil {
		return nil, false, err
	}
	teams, teamsComplete, err := pagedList(ctx, l.HTTPClient, g.api, g.request("/user/teams?per_page=100", l.AccessToken), githubPage[githubTeam])
	if err != nil {
		return nil, false, err
	}
	var groups []string
	for _, o := range orgs {
		if o.Login != "" {
			groups = append(groups, o.Login)
		}
	}
	for _, t := range teams {
		if t.Slug != "" && t.Organization.Login != "" {
			groups = append(groups, t.Organization.Login+"/"+t.Slug)
		}
	}
	return groups, orgsComplete && teamsComplete, nil
}

// githubPage decodes one page of a GitHub list: a JSON array, the next
// page in the Link header.
func githubPage[T any](h http.Header, raw json.RawMessage) ([]T, string, error) {
	var items []T
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, "", fmt.Errorf("not a JSON array of the expected items")
	}
	return items, nextLink(h), nil
}
