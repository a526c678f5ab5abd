package presets

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The presets of OpenID providers that need settings only, and Google's
// hosted-domain check.

// Google (type google): accounts.google.com, refresh tokens requested the
// way Google issues them (access_type=offline, prompt=consent), and
// hosted_domains checked against the ID token's hd claim, which only
// Google Workspace accounts carry (an address's domain proves nothing: a
// consumer account can have any address).
var googlePreset = preset{
	name: "Google",
	base: providers.TypeOIDC,
	defaults: func(c providers.Config) providers.Config {
		params := map[string]string{"access_type": "offline", "prompt": "consent"}
		switch {
		case len(c.HostedDomains) == 1:
			params["hd"] = strings.ToLower(c.HostedDomains[0]) // the account chooser shows that domain's accounts
		case len(c.HostedDomains) > 1:
			params["hd"] = "*"
		}
		return providers.Config{Issuer: googleIssuer, Scopes: []string{"openid", "email", "profile"}, AuthParams: params}
	},
	check: func(c providers.Config) []error {
		var p problems
		for i, d := range c.HostedDomains {
			if d != "*" && (d == "" || strings.ContainsAny(d, "@/: \t") || strings.HasPrefix(d, ".")) {
				p.add(fmt.Sprintf("hosted_domains[%d]", i), "%q is not a domain (example.com), nor * (any Google Workspace account)", d)
			}
		}
		return p
	},
	hooks: func(c providers.Config, _ providers.Options) providers.Hooks {
		h := providers.Hooks{Issuer: googleISS(Resolve(c).Issuer)}
		if len(c.HostedDomains) > 0 {
			domains := make([]string, len(c.HostedDomains))
			for i, d := range c.HostedDomains {
				domains[i] = strings.ToLower(d)
			}
			h.Complete = func(_ context.Context, l providers.Login, _ *providers.Identity) error {
				return hostedDomain(c.ID, domains, stringClaim(l.IDToken, "hd"))
			}
		}
		return h
	},
	notes: func(c providers.Config) []Setting {
		admission := "any Google account"
		switch {
		case slices.Contains(c.HostedDomains, "*"):
			admission = "any Google Workspace account (an hd claim), no consumer account"
		case len(c.HostedDomains) > 0:
			admission = "Google Workspace accounts of " + strings.Join(c.HostedDomains, ", ") + " only, by the ID token's hd claim"
		}
		return []Setting{{Key: "admission", Value: admission, Configured: len(c.HostedDomains) > 0},
			{Key: "iss", Value: "the issuer, or the same without https:// (Google's ID tokens use both)"}}
	},
}

const googleIssuer = "https://accounts.google.com"

// googleISS accepts the issuer and its spelling without the scheme: Google
// documents that its ID tokens carry either "https://accounts.google.com"
// or "accounts.google.com".
func googleISS(issuer string) func(string) error {
	bare := strings.TrimPrefix(issuer, "https://")
	return func(iss string) error {
		if iss == issuer || iss == bare {
			return nil
		}
		return fmt.Errorf("providers: iss %q is neither %q nor %q", iss, issuer, bare)
	}
}

// hostedDomain admits an ID token's hd claim by hosted_domains.
func hostedDomain(provider string, domains []string, hd string) error {
	hd = strings.ToLower(hd)
	switch {
	case hd == "":
		return &providers.NotAllowedError{Provider: provider, Reason: "no hd claim (not a Google Workspace account), and hosted_domains is set"}
	case slices.Contains(domains, "*") || slices.Contains(domains, hd):
		return nil
	}
	return &providers.NotAllowedError{Provider: provider, Reason: fmt.Sprintf("hd %q is not in hosted_domains", hd)}
}

// GitLab (type gitlab): gitlab.com or a self-managed instance (base_url).
// Its ID token carries groups_direct; userinfo carries groups (direct and
// inherited, as full paths), which the default mapping reads. nickname is
// the username on every GitLab version.
var gitlabPreset = preset{
	name: "GitLab",
	base: providers.TypeOIDC,
	defaults: func(c providers.Config) providers.Config {
		return providers.Config{Issuer: strings.TrimSuffix(cmp.Or(c.BaseURL, "https://gitlab.com"), "/"),
			Scopes: []string{"openid", "profile", "email"}, Claims: providers.ClaimsConfig{Username: "nickname"}}
	},
	check: func(c providers.Config) []error {
		var p problems
		p.checkBaseURL("base_url", c.BaseURL)
		if c.BaseURL != "" && c.Issuer != "" {
			p.add("issuer", "set base_url or issuer, not both (a GitLab's issuer is its base URL)")
		}
		return p
	},
	notes: func(c providers.Config) []Setting {
		return []Setting{{Key: "groups", Value: "groups from userinfo: full paths of the groups the user is a member of, directly or through a parent group"}}
	},
}

// Keycloak (type keycloak): issuer is the realm URL. Realm roles become
// groups "role:<role>" and this client's roles "role:<client_id>:<role>"
// (as oauth2-proxy names them), beside a groups claim from a group
// membership mapper. Keycloak puts roles into the access token only,
// unless its role mappers are set to add them to the ID token or userinfo.
var keycloakPreset = preset{
	name: "Keycloak",
	base: providers.TypeOIDC,
	defaults: func(c providers.Config) providers.Config {
		return providers.Config{Scopes: []string{"openid", "profile", "email"}, Claims: providers.ClaimsConfig{ExtraGroups: []providers.GroupClaim{
			{Claim: "realm_access.roles", Prefix: "role:"},
			{Claim: "resource_access." + c.ClientID + ".roles", Prefix: "role:" + c.ClientID + ":"},
		}}}
	},
	check: func(c providers.Config) []error {
		var p problems
		if u, err := url.Parse(c.Issuer); c.Issuer != "" && err == nil && !strings.Contains(u.Path+"/", "/realms/") {
			p.add("issuer", "%q must be the realm's URL, https://<host>/realms/<realm>", c.Issuer)
		}
		return p
	},
	notes: func(c providers.Config) []Setting {
		return []Setting{{Key: "roles", Value: "in the ID token or userinfo only when the realm's role mappers add them there (Keycloak's default is the access token only)"}}
	},
}

// Okta (type okta): issuer is the org (https://<org>.okta.com, whose
// authorization server knows the groups scope) or a custom authorization
// server (<org>/oauth2/<id>, whose groups claim is configured on it).
var oktaPreset = preset{
	name: "Okta",
	base: providers.TypeOIDC,
	defaults: func(c providers.Config) providers.Config {
		scopes := []string{"openid", "profile", "email"}
		if !oktaCustomServer(c.Issuer) {
			scopes = append(scopes, "groups")
		}
		return providers.Config{Scopes: scopes}
	},
	check: func(providers.Config) []error { return nil },
	notes: func(c providers.Config) []Setting {
		if oktaCustomServer(c.Issuer) {
			return []Setting{{Key: "groups", Value: "the groups claim that the custom authorization server is configured to add"}}
		}
		return []Setting{{Key: "groups", Value: "the groups claim of the org authorization server (groups scope; the app's groups claim filter)"}}
	},
}

// oktaCustomServer reports whether issuer is a custom authorization server
// (<org>/oauth2/<id>) rather than the org's.
func oktaCustomServer(issuer string) bool {
	u, err := url.Parse(issuer)
	return err == nil && strings.HasPrefix(u.Path, "/oauth2/")
}
