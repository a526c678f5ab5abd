// Package presets holds the IdP presets (Types). Each is a provider type
// named after an IdP (github, google, entra, gitlab, keycloak, okta) that
// stands for one of the generic types, oidc or oauth2, with the IdP's
// settings filled in: its issuer or endpoints from a few fields of its own
// (a tenant, a base URL), its scopes, its claim paths, its authorization
// parameters. Every generic setting the configuration sets wins over the
// preset's. Where an IdP needs more than settings (GitHub's e-mail and
// organisation APIs, Entra ID's per-tenant issuers and Microsoft Graph,
// Google's hosted domain), the preset adds a hook (providers.Hooks) to the
// generic login; there is no second login flow. docs/providers.md
// describes each preset for users.
package presets

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// preset is one IdP's preset, as data and a few functions.
type preset struct {
	// name is the provider's default display name ("GitHub").
	name string
	// base is the generic type the preset configures: TypeOIDC or TypeOAuth2.
	base string
	// defaults returns the generic settings the preset stands for, given
	// the configuration's preset fields; Resolve fills them in where the
	// configuration leaves a setting empty.
	defaults func(c providers.Config) providers.Config
	// check reports the problems of the preset's own fields, and of the
	// generic settings it constrains, each prefixed with its YAML key.
	check func(c providers.Config) []error
	// hooks returns the preset's extra steps for the configuration c (not
	// resolved); nil when it has none.
	hooks func(c providers.Config, opts providers.Options) providers.Hooks
	// notes say, for `oidc-broker check`, what the preset does beyond its
	// settings, for c resolved.
	notes func(c providers.Config) []Setting
	// probe, when set, adds to `check --online` what the preset's hooks
	// rely on, for c resolved.
	probe func(ctx context.Context, c providers.Config, hc *http.Client, r *providers.Report)
}

// presets is the registry of presets by type. An unknown type is a
// configuration error that names it (Types.Validate). It is filled in
// init: the presets' functions use Resolve, which reads it.
var presets map[string]preset

func init() {
	presets = map[string]preset{
		providers.TypeGitHub:   githubPreset,
		providers.TypeGoogle:   googlePreset,
		providers.TypeEntra:    entraPreset,
		providers.TypeGitLab:   gitlabPreset,
		providers.TypeKeycloak: keycloakPreset,
		providers.TypeOkta:     oktaPreset,
	}
}

// Types are the preset types, by name.
func Types() providers.Types {
	var ts providers.Types
	for _, name := range slices.Sorted(maps.Keys(presets)) {
		ps := presets[name]
		ts = append(ts, providers.Type{Name: name, Check: ps.problems,
			Open:  func(c providers.Config, opts providers.Options) providers.Provider { return openPreset(ps, c, opts) },
			Probe: ps.probeAll})
	}
	return ts
}

// problems checks c, of this preset's type: its own settings, and the
// generic ones once resolved.
func (ps preset) problems(c providers.Config) []error {
	return append(ps.check(c), unlessDerived(c, ps.defaults(c), providers.OIDC.Check(Resolve(c)))...)
}

// probeAll probes c as the generic provider it stands for, plus what the
// preset's hooks rely on (Microsoft Graph).
func (ps preset) probeAll(ctx context.Context, c providers.Config, hc *http.Client, r *providers.Report) {
	var hooks providers.Hooks
	if ps.hooks != nil {
		hooks = ps.hooks(c, providers.Options{HTTPClient: hc})
	}
	c = Resolve(c)
	r.Issuer = c.Issuer
	if ps.base == providers.TypeOAuth2 {
		providers.OAuth2.Probe(ctx, c, hc, r)
	} else {
		providers.ProbeOIDC(ctx, c, hooks, hc, r)
	}
	if ps.probe != nil {
		ps.probe(ctx, c, hc, r)
	}
}

// openPreset opens the generic provider a preset stands for, with its
// settings resolved and its hooks.
func openPreset(ps preset, cfg providers.Config, opts providers.Options) providers.Provider {
	var hooks providers.Hooks
	if ps.hooks != nil {
		hooks = ps.hooks(cfg, opts)
	}
	if ps.base == providers.TypeOAuth2 {
		return providers.OpenOAuth2(Resolve(cfg), hooks, opts)
	}
	return providers.OpenOIDC(Resolve(cfg), hooks, opts)
}

// Resolve returns the configuration a provider runs with: for a preset
// type, the generic type it stands for, with the preset's settings filled
// in wherever c leaves a setting empty (auth_params merged, c's values
// winning); c itself for the generic types.
func Resolve(c providers.Config) providers.Config {
	ps, ok := presets[c.Type]
	if !ok {
		return c
	}
	d := ps.defaults(c)
	r := c
	r.Type = ps.base
	fill(&r.Name, cmp.Or(d.Name, ps.name))
	fill(&r.Issuer, d.Issuer)
	fill(&r.AuthorizationEndpoint, d.AuthorizationEndpoint)
	fill(&r.TokenEndpoint, d.TokenEndpoint)
	fill(&r.UserinfoEndpoint, d.UserinfoEndpoint)
	fill(&r.Userinfo, d.Userinfo)
	if len(r.Scopes) == 0 {
		r.Scopes = d.Scopes
	}
	if len(d.AuthParams) > 0 {
		r.AuthParams = maps.Clone(d.AuthParams)
		maps.Copy(r.AuthParams, c.AuthParams)
	}
	fill(&r.Claims.Source, d.Claims.Source)
	fill(&r.Claims.Subject, d.Claims.Subject)
	fill(&r.Claims.Username, d.Claims.Username)
	fill(&r.Claims.Name, d.Claims.Name)
	fill(&r.Claims.Email, d.Claims.Email)
	fill(&r.Claims.Groups, d.Claims.Groups)
	if r.Claims.ExtraGroups == nil {
		r.Claims.ExtraGroups = d.Claims.ExtraGroups
	}
	return r
}

// prefixed returns groups each with prefix.
func prefixed(prefix string, groups []string) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = prefix + g
	}
	return out
}

func fill(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// unlessDerived drops the problems of the endpoint settings a preset
// derived (d) from its own fields: those fields' problems are reported
// already, by their own names.
func unlessDerived(c, d providers.Config, errs []error) []error {
	derived := map[string]bool{"issuer": c.Issuer == "" && d.Issuer != "",
		"authorization_endpoint": c.AuthorizationEndpoint == "" && d.AuthorizationEndpoint != "",
		"token_endpoint":         c.TokenEndpoint == "" && d.TokenEndpoint != "",
		"userinfo_endpoint":      c.UserinfoEndpoint == "" && d.UserinfoEndpoint != ""}
	return slices.DeleteFunc(errs, func(e error) bool {
		key, _, _ := strings.Cut(e.Error(), ":")
		return derived[key]
	})
}

// Setting is one setting a preset gives its provider, for people
// (`oidc-broker check`).
type Setting struct {
	// Key is the YAML key of a generic setting (issuer, scopes,
	// claims.username), or a name for what the preset does beyond settings
	// (email, groups, admission).
	Key string `json:"key"`
	// Value is the effective value.
	Value string `json:"value"`
	// Configured is true when the configuration sets the value itself,
	// overriding the preset's.
	Configured bool `json:"configured,omitempty"`
}

// Settings describes what the preset type of c means for c: the
// generic type it stands for, every generic setting it fills in with its
// effective value (marked Configured where c overrides the preset), then
// what it does beyond settings. ok is false for the generic types.
func Settings(c providers.Config) (base string, settings []Setting, ok bool) {
	ps, ok := presets[c.Type]
	if !ok {
		return "", nil, false
	}
	d, r := ps.defaults(c), Resolve(c)
	add := func(key, preset, effective, configured string) {
		if preset != "" || configured != "" {
			settings = append(settings, Setting{Key: key, Value: effective, Configured: configured != ""})
		}
	}
	add("issuer", d.Issuer, r.Issuer, c.Issuer)
	if ps.hooks != nil {
		if h := ps.hooks(c, providers.Options{}); h.DiscoveryURL != "" {
			add("discovery", h.DiscoveryURL, h.DiscoveryURL, "")
		}
	}
	add("authorization_endpoint", d.AuthorizationEndpoint, r.AuthorizationEndpoint, c.AuthorizationEndpoint)
	add("token_endpoint", d.TokenEndpoint, r.TokenEndpoint, c.TokenEndpoint)
	add("userinfo_endpoint", d.UserinfoEndpoint, r.UserinfoEndpoint, c.UserinfoEndpoint)
	add("scopes", strings.Join(d.Scopes, " "), strings.Join(r.RequestedScopes(), " "), strings.Join(c.Scopes, " "))
	add("userinfo", d.Userinfo, r.Userinfo, c.Userinfo)
	for _, k := range slices.Sorted(maps.Keys(r.AuthParams)) {
		add("auth_params."+k, d.AuthParams[k], r.AuthParams[k], c.AuthParams[k])
	}
	claims := []struct{ key, preset, effective, configured string }{
		{"claims.source", d.Claims.Source, r.Claims.Source, c.Claims.Source},
		{"claims.subject", d.Claims.Subject, r.Claims.Subject, c.Claims.Subject},
		{"claims.username", d.Claims.Username, r.Claims.Username, c.Claims.Username},
		{"claims.name", d.Claims.Name, r.Claims.Name, c.Claims.Name},
		{"claims.email", d.Claims.Email, r.Claims.Email, c.Claims.Email},
		{"claims.groups", d.Claims.Groups, r.Claims.Groups, c.Claims.Groups},
	}
	for _, cl := range claims {
		add(cl.key, cl.preset, cl.effective, cl.configured)
	}
	if d.Claims.ExtraGroups != nil || c.Claims.ExtraGroups != nil {
		var parts []string
		for _, g := range r.Claims.ExtraGroups {
			parts = append(parts, fmt.Sprintf("%s (as %q)", g.Claim, g.Prefix+"…"))
		}
		settings = append(settings, Setting{Key: "claims.extra_groups", Value: cmp.Or(strings.Join(parts, ", "), "none"),
			Configured: c.Claims.ExtraGroups != nil})
	}
	return ps.base, append(settings, ps.notes(r)...), true
}

// errorsOf turns field/message pairs into prefixed errors.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// checkBaseURL checks an optional base URL setting.
func (p *problems) checkBaseURL(key, value string) {
	if value == "" {
		return
	}
	if err := providers.CheckURL(value, false); err != nil {
		p.add(key, "%q %v", value, err)
	}
}

// stringClaim is a top-level string claim of an ID token, or "".
func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}
