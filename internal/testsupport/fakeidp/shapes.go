package fakeidp

import (
	"net/url"
	"slices"
	"strings"
)

// Client is the client registered at a fake IdP.
type Client struct {
	ID, Secret, RedirectURI string
}

// NewGoogle serves Google's OpenID Provider layout at the server's root
// (/o/oauth2/v2/auth, /token, /v1/userinfo, /oauth2/v3/certs). Like Google,
// it issues a refresh token only to an authorization request with
// access_type=offline, and publishes no end_session_endpoint. Its users'
// Claims carry what Google sends: sub, email, email_verified, name, and hd
// for Google Workspace accounts.
func NewGoogle(c Client) *OP {
	op := &OP{ClientID: c.ID, ClientSecret: c.Secret, RedirectURI: c.RedirectURI,
		RefreshTokens: func(q url.Values) bool { return q.Get("access_type") == "offline" }}
	return op.start(layout{discovery: "/.well-known/openid-configuration", authorize: "/o/oauth2/v2/auth",
		token: "/token", userinfo: "/v1/userinfo", keys: "/oauth2/v3/certs", issuer: rootIssuer})
}

// NewGitLab serves GitLab's layout at the server's root (/oauth/authorize,
// /oauth/token, /oauth/userinfo, /oauth/discovery/keys); a self-managed
// GitLab looks the same. Its users' Claims are the ID token's (sub,
// email, email_verified, groups_direct, nickname) and Userinfo adds groups.
func NewGitLab(c Client) *OP {
	op := &OP{ClientID: c.ID, ClientSecret: c.Secret, RedirectURI: c.RedirectURI,
		RefreshTokens: func(url.Values) bool { return true }}
	return op.start(layout{discovery: "/.well-known/openid-configuration", authorize: "/oauth/authorize",
		token: "/oauth/token", userinfo: "/oauth/userinfo", keys: "/oauth/discovery/keys", issuer: rootIssuer})
}

// NewKeycloak serves a Keycloak realm at /realms/<realm>
// (/protocol/openid-connect/auth, token, userinfo, certs, logout), with
// back-channel logout announced. Its users' Claims carry realm_access.roles
// and resource_access.<client>.roles as Keycloak's role mappers put them
// when "Add to ID token" is on.
func NewKeycloak(c Client, realm string) *OP {
	op := &OP{ClientID: c.ID, ClientSecret: c.Secret, RedirectURI: c.RedirectURI,
		RefreshTokens: func(url.Values) bool { return true }}
	p := "/protocol/openid-connect"
	return op.start(layout{prefix: "/realms/" + realm, discovery: "/.well-known/openid-configuration",
		authorize: p + "/auth", token: p + "/token", userinfo: p + "/userinfo", keys: p + "/certs", endSession: p + "/logout",
		issuer: prefixIssuer("/realms/" + realm),
		more:   map[string]any{"backchannel_logout_supported": true, "backchannel_logout_session_supported": true}})
}

// NewOkta serves an Okta org authorization server at the root
// (/oauth2/v1/...), or with server set a custom one at /oauth2/<server>
// (/oauth2/<server>/v1/...). Like Okta, it issues a refresh token only with
// the offline_access scope.
func NewOkta(c Client, server string) *OP {
	op := &OP{ClientID: c.ID, ClientSecret: c.Secret, RedirectURI: c.RedirectURI,
		RefreshTokens: func(q url.Values) bool { return slices.Contains(strings.Fields(q.Get("scope")), "offline_access") }}
	prefix, v1 := "", "/oauth2/v1"
	if server != "" {
		prefix, v1 = "/oauth2/"+server, "/v1"
	}
	return op.start(layout{prefix: prefix, discovery: "/.well-known/openid-configuration", authorize: v1 + "/authorize",
		token: v1 + "/token", userinfo: v1 + "/userinfo", keys: v1 + "/keys", endSession: v1 + "/logout",
		issuer: prefixIssuer(prefix)})
}

// NewEntra serves Microsoft Entra ID's v2.0 endpoints under a tenant path
// segment: /<tenant>/v2.0/.well-known/openid-configuration,
// /<tenant>/oauth2/v2.0/authorize, token and logout,
// /<tenant>/discovery/v2.0/keys. <tenant> is a tenant id, or organizations,
// common or consumers; the multi-tenant ones state the issuer template
// <url>/{tenantid}/v2.0, and each token's iss is the issuer of its user's
// tenant, <url>/<tid>/v2.0, signed with the one key all tenants share, as
// at Entra ID. Users' Claims must carry tid. It issues a refresh token
// with the offline_access scope. Serve Microsoft Graph for it with
// NewGraph.
func NewEntra(c Client) *OP {
	op := &OP{ClientID: c.ID, ClientSecret: c.Secret, RedirectURI: c.RedirectURI,
		RefreshTokens: func(q url.Values) bool { return slices.Contains(strings.Fields(q.Get("scope")), "offline_access") }}
	return op.start(layout{tenants: true, discovery: "/v2.0/.well-known/openid-configuration",
		authorize: "/oauth2/v2.0/authorize", token: "/oauth2/v2.0/token", keys: "/discovery/v2.0/keys",
		endSession: "/oauth2/v2.0/logout", issuer: entraIssuer,
		tokenIssuer: func(base string, u User) string {
			tid, _ := u.Claims["tid"].(string)
			return base + "/" + tid + "/v2.0"
		}})
}

// EntraConsumers is the tenant of personal Microsoft accounts.
const EntraConsumers = "9188040d-6c67-4c5b-b112-36a304b66dad"

func entraIssuer(base, tenant string) string {
	switch tenant {
	case "organizations", "common":
		return base + "/{tenantid}/v2.0"
	case "consumers":
		return base + "/" + EntraConsumers + "/v2.0"
	}
	return base + "/" + tenant + "/v2.0"
}

func rootIssuer(base, _ string) string { return base }

func prefixIssuer(prefix string) func(base, tenant string) string {
	return func(base, _ string) string { return base + prefix }
}

// EntraOverage returns the claims of an Entra ID token whose groups did
// not fit (more than 200): no groups claim, but the distributed-claims
// pointers Entra ID puts in its place (OpenID Connect Core §5.6.2). The
// endpoint they name is Azure AD Graph's, which a client must not call;
// Microsoft Graph answers instead.
func EntraOverage(tid, oid string) map[string]any {
	return map[string]any{
		"_claim_names": map[string]any{"groups": "src1"},
		"_claim_sources": map[string]any{"src1": map[string]any{
			"endpoint": "https://graph.windows.net/" + tid + "/users/" + oid + "/getMemberObjects"}},
	}
}
