package presets

import (
	"cmp"
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

// Microsoft Entra ID (type entra): an OpenID provider at
// <base_url>/<tenant>/v2.0. A single-tenant app names its tenant id; a
// multi-tenant app (organizations, common) gets a discovery document whose
// issuer is the template <base_url>/{tenantid}/v2.0, so each ID token's iss
// is checked against the issuer of its own tid, and tid against tenants.
// Entra ID sends no email_verified: an address is verified only on the
// signals Microsoft documents (the xms_edov optional claim, or the address
// in verified_primary_email / verified_secondary_email). Groups that did
// not fit in the ID token (overage) are read from Microsoft Graph with the
// user's access token; app roles become groups "role:<value>".
var entraPreset = preset{
	name: "Microsoft",
	base: providers.TypeOIDC,
	defaults: func(c providers.Config) providers.Config {
		return providers.Config{
			Issuer:   entraIssuer(c),
			Scopes:   []string{"openid", "profile", "email", "offline_access", "User.Read"},
			Userinfo: "never",
			Claims: providers.ClaimsConfig{Source: providers.SourceIDToken,
				ExtraGroups: []providers.GroupClaim{{Claim: "roles", Prefix: "role:"}}},
		}
	},
	check: checkEntra,
	hooks: func(c providers.Config, opts providers.Options) providers.Hooks {
		e := newEntraHooks(c, opts)
		h := providers.Hooks{Complete: e.complete, ResolvesOverage: e.overage != "off"}
		switch e.tenant {
		case "organizations", "common", "consumers":
			h.DiscoveryURL = e.base + "/" + e.tenant + "/v2.0/.well-known/openid-configuration"
		}
		if e.tenants != nil {
			h.Issuer = e.tenantIssuer
		}
		return h
	},
	notes: func(c providers.Config) []Setting {
		e := newEntraHooks(c, providers.Options{})
		admission := "users of tenant " + e.tenant
		switch {
		case e.tenants != nil:
			admission = fmt.Sprintf("users of the tenants %s only; each ID token's iss must be %s/<its tid>/v2.0", strings.Join(e.tenants, ", "), e.base)
		case e.tenant == "consumers":
			admission = "personal Microsoft accounts (tenant " + entraConsumers + ")"
		}
		overage := map[string]string{
			"ids":   "resolved to group object ids through " + e.graph + "/v1.0/me/getMemberObjects (delegated User.Read)",
			"names": "resolved to group names through " + e.graph + "/v1.0/me/transitiveMemberOf (delegated GroupMember.Read.All)",
			"off":   "not resolved: the identity is relayed with groups_incomplete",
		}
		return []Setting{
			{Key: "admission", Value: admission},
			{Key: "email_verified", Value: "only with the optional claim xms_edov, or the address in verified_primary_email or verified_secondary_email"},
			{Key: "group_overage", Value: fmt.Sprintf("%s; at most %d groups, within %s", overage[e.overage], maxAPIItems, providers.CompleteTimeout), Configured: c.GroupOverage != ""},
		}
	},
	probe: func(ctx context.Context, c providers.Config, hc *http.Client, r *providers.Report) {
		e := newEntraHooks(c, providers.Options{})
		if e.overage == "off" {
			return
		}
		if status, err := providers.Answers(ctx, hc, e.graph+"/v1.0/"); err != nil {
			r.Add("graph_url", providers.SeverityWarning, "%s is unreachable: %s (groups overage stays unresolved)", e.graph, providers.NetworkReason(err))
		} else {
			r.Add("graph_url", providers.SeverityOK, "%s answers (HTTP %d)", e.graph, status)
		}
	},
}

// Entra ID's defaults.
const (
	entraAuthority = "https://login.microsoftonline.com"
	entraGraph     = "https://graph.microsoft.com"
	// entraConsumers is the tenant of personal Microsoft accounts.
	entraConsumers = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// entraIssuer is the issuer of c's tenant: the template of the
// multi-tenant endpoints, as their discovery documents state it.
func entraIssuer(c providers.Config) string {
	base := strings.TrimSuffix(cmp.Or(c.BaseURL, entraAuthority), "/")
	switch t := strings.ToLower(c.Tenant); t {
	case "":
		return ""
	case "organizations", "common":
		return base + "/{tenantid}/v2.0"
	case "consumers":
		return base + "/" + entraConsumers + "/v2.0"
	default:
		return base + "/" + t + "/v2.0"
	}
}

func checkEntra(c providers.Config) []error {
	var p problems
	p.checkBaseURL("base_url", c.BaseURL)
	p.checkBaseURL("graph_url", c.GraphURL)
	multi := false
	switch t := strings.ToLower(c.Tenant); {
	case t == "":
		p.add("tenant", "is required: the directory (tenant) id, or organizations or common (with tenants), or consumers")
	case t == "organizations" || t == "common":
		multi = true
	case t == "consumers" || guidPattern.MatchString(t):
	default:
		p.add("tenant", "%q must be the directory (tenant) id, a GUID, or organizations, common or consumers (a domain name's tokens name the GUID as their issuer)", c.Tenant)
	}
	switch {
	case multi && len(c.Tenants) == 0:
		p.add("tenants", "is required with tenant %s: the tenant ids whose users may sign in", c.Tenant)
	case !multi && c.Tenants != nil:
		p.add("tenants", "is only used with tenant organizations or common")
	}
	for i, t := range c.Tenants {
		if !guidPattern.MatchString(t) {
			p.add(fmt.Sprintf("tenants[%d]", i), "%q is not a tenant id (a GUID)", t)
		}
	}
	switch c.GroupOverage {
	case "", "ids", "names", "off":
	default:
		p.add("group_overage", "%q is not one of ids, names, off", c.GroupOverage)
	}
	if c.Issuer != "" {
		p.add("issuer", "is set by the entra preset from tenant and base_url")
	}
	return p
}

// entraHooks is the Entra ID preset's complete step.
type entraHooks struct {
	provider  string
	base      string   // the authority, without a trailing slash
	tenant    string   // lower-cased
	tenants   []string // lower-cased; nil unless multi-tenant
	graph     string   // Microsoft Graph, without a trailing slash
	overage   string   // ids, names or off
	emailPath string   // claims.email
	prefix    string   // claims.group_prefix
	insecure  bool     // claims.insecure_assume_email_verified
	log       *slog.Logger
}

func newEntraHooks(c providers.Config, opts providers.Options) *entraHooks {
	e := &entraHooks{provider: c.ID, base: strings.TrimSuffix(cmp.Or(c.BaseURL, entraAuthority), "/"),
		tenant: strings.ToLower(c.Tenant), graph: strings.TrimSuffix(cmp.Or(c.GraphURL, entraGraph), "/"),
		overage: cmp.Or(c.GroupOverage, "ids"), emailPath: cmp.Or(c.Claims.Email, "email"), prefix: c.Claims.GroupPrefix,
		insecure: c.Claims.InsecureAssumeEmailVerified, log: opts.Logger}
	if e.tenant == "organizations" || e.tenant == "common" {
		e.tenants = []string{}
		for _, t := range c.Tenants {
			e.tenants = append(e.tenants, strings.ToLower(t))
		}
	}
	return e
}

// tenantIssuer accepts, for a multi-tenant app, the issuer of any tenant:
// <base>/<GUID>/v2.0. Which tenants are admitted is complete's decision,
// once the token is verified.
func (e *entraHooks) tenantIssuer(iss string) error {
	tid, _ := strings.CutPrefix(iss, e.base+"/")
	if tid, ok := strings.CutSuffix(tid, "/v2.0"); ok && strings.HasPrefix(iss, e.base+"/") && guidPattern.MatchString(tid) {
		return nil
	}
	return fmt.Errorf("providers: %s: iss %q is not %s/<tenant id>/v2.0", e.provider, iss, e.base)
}

// complete checks the token's tenant, decides whether the email is
// verified, and resolves a groups overage.
func (e *entraHooks) complete(ctx context.Context, l providers.Login, id *providers.Identity) error {
	tid := strings.ToLower(stringClaim(l.IDToken, "tid"))
	if iss := stringClaim(l.IDToken, "iss"); tid == "" || iss != e.base+"/"+tid+"/v2.0" {
		return fmt.Errorf("providers: %s: the ID token's iss %q is not the issuer of its tenant (tid %q)", e.provider, iss, tid)
	}
	if e.tenants != nil && !slices.Contains(e.tenants, tid) {
		return &providers.NotAllowedError{Provider: e.provider, Reason: fmt.Sprintf("tenant %s is not in tenants", tid)}
	}
	id.EmailVerified = e.insecure || entraEmailVerified(l.IDToken, e.emailPath, id.Email)
	if id.GroupsIncomplete && e.overage != "off" && !l.APIToken { // an API's token is no Graph token: groups stay incomplete
		e.resolveOverage(ctx, l, id)
	}
	return nil
}

// entraEmailVerified reports whether the ID token vouches for email, the
// address from its email claim, by a signal Microsoft documents: the
// optional claim xms_edov (the email's domain is verified by its owner),
// or the address listed in verified_primary_email or
// verified_secondary_email.
func entraEmailVerified(claims map[string]any, emailPath, email string) bool {
	if email == "" || providers.ClaimString(claims, emailPath) != email {
		return false
	}
	if providers.ClaimTrue(claims, "xms_edov") && emailPath == "email" { // it vouches for the email claim, not a remapped one
		return true
	}
	for _, k := range []string{"verified_primary_email", "verified_secondary_email"} {
		if slices.ContainsFunc(providers.ClaimList(claims, k), func(s string) bool { return strings.EqualFold(s, email) }) {
			return true
		}
	}
	return false
}

// resolveOverage reads the user's groups from Microsoft Graph. When Graph
// does not answer usably, the identity keeps groups_incomplete, which
// access rules treat as "not known to be a member" (none_of refuses).
func (e *entraHooks) resolveOverage(ctx context.Context, l providers.Login, id *providers.Identity) {
	var groups []string
	var complete bool
	var err error
	if e.overage == "names" {
		groups, complete, err = e.groupNames(ctx, l)
	} else {
		groups, complete, err = e.groupIDs(ctx, l)
	}
	if err != nil {
		e.log.Warn("entra: groups overage: Microsoft Graph did not answer usably; relaying the identity with groups_incomplete",
			"provider", e.provider, "sub", id.Subject, "error", err)
		return
	}
	id.Groups = append(prefixed(e.prefix, groups), id.Groups...)
	id.GroupsIncomplete = !complete
	e.log.Info("entra: groups overage resolved through Microsoft Graph", "provider", e.provider, "sub", id.Subject,
		"groups", len(groups), "complete", complete)
}

// groupIDs calls getMemberObjects on /me: the ids of every group,
// directory role and administrative unit the user is a member of,
// transitively (delegated permission User.Read).
func (e *entraHooks) groupIDs(ctx context.Context, l providers.Login) ([]string, bool, error) {
	var answer struct {
		Value []string `json:"value"`
	}
	req := apiRequest{method: http.MethodPost, url: e.graph + "/v1.0/me/getMemberObjects", token: l.AccessToken,
		body: `{"securityEnabledOnly":false}`, header: http.Header{"Accept": {"application/json"}}}
	if _, err := req.call(ctx, l.HTTPClient, &answer); err != nil {
		return nil, false, err
	}
	if len(answer.Value) > maxAPIItems {
		return answer.Value[:maxAPIItems], false, nil
	}
	return answer.Value, true, nil
}

// groupNames lists the display names of the user's groups, transitively,
// page by page (delegated permission GroupMember.Read.All).
func (e *entraHooks) groupNames(ctx context.Context, l providers.Login) ([]string, bool, error) {
	first := apiRequest{url: e.graph + "/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=100",
		token: l.AccessToken, header: http.Header{"Accept": {"application/json"}}}
	return pagedList(ctx, l.HTTPClient, e.graph+"/v1.0", first, func(_ http.Header, raw json.RawMessage) ([]string, string, error) {
		var page struct {
			Value []struct {
				DisplayName string `json:"displayName"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, "", fmt.Errorf("not a Graph collection")
		}
		var names []string
		for _, g := range page.Value {
			if g.DisplayName != "" {
				names = append(names, g.DisplayName)
			}
		}
		return names, page.Next, nil
	})
}
