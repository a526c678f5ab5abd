package providers

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// IdP presets. A preset is a provider type named after an IdP (github,
// google, entra, gitlab, keycloak, okta) that stands for one of the generic
// types, oidc or oauth2, with the IdP's settings filled in: its issuer or
// endpoints from a few fields of its own (a tenant, a base URL), its scopes,
// its claim paths, its authorization parameters. Every generic setting the
// configuration sets wins over the preset's. Where an IdP needs more than
// settings (GitHub's e-mail and organisation APIs, Entra ID's per-tenant
// issuers and Microsoft Graph, Google's hosted domain), the preset adds a
// hook to the generic login; there is no second login flow.
// docs/providers.md describes each preset for users.

// The preset types, values of Config.Type.
const (
	TypeGitHub   = "github"
	TypeGoogle   = "google"
	TypeEntra    = "entra"
	TypeGitLab   = "gitlab"
	TypeKeycloak = "keycloak"
	TypeOkta     = "okta"
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
	defaults func(c Config) Config
	// check reports the problems of the preset's own fields, and of the
	// generic settings it constrains, each prefixed with its YAML key.
	check func(c Config) []error
	// hooks returns the preset's extra steps for the configuration c (not
	// resolved); nil when it has none.
	hooks func(c Config, opts Options) presetHooks
	// notes say, for `oidc-broker check`, what the preset does beyond its
	// settings, for c resolved.
	notes func(c Config) []Setting
	// probe, when set, adds to `check --online` what the preset's hooks
	// rely on, for c resolved.
	probe func(ctx context.Context, c Config, hc *http.Client, r *Report)
}

// presets is the registry of presets by type. An unknown type is a
// configuration error that names it (Types.Validate). It is filled in
// init: the presets' functions use Resolve, which reads it.
var presets map[string]preset

func init() {
	presets = map[string]preset{
		TypeGitHub:   githubPreset,
		TypeGoogle:   googlePreset,
		TypeEntra:    entraPreset,
		TypeGitLab:   gitlabPreset,
		TypeKeycloak: keycloakPreset,
		TypeOkta:     oktaPreset,
	}
}

// Presets are the preset types, by name.
func Presets() Types {
	var ts Types
	for _, name := range slices.Sorted(maps.Keys(presets)) {
		ps := presets[name]
		ts = append(ts, Type{Name: name, Check: ps.problems,
			Open:  func(c Config, opts Options) Provider { return openPreset(ps, c, opts) },
			Probe: ps.probeAll})
	}
	return ts
}

// problems checks c, of this preset's type: its own settings, and the
// generic ones once resolved.
func (ps preset) problems(c Config) []error {
	return append(ps.check(c), c.unlessDerived(ps.defaults(c), c.Resolve().redirectProblems())...)
}

// probeAll probes c as the generic provider it stands for, plus what the
// preset's hooks rely on (Microsoft Graph).
func (ps preset) probeAll(ctx context.Context, c Config, hc *http.Client, r *Report) {
	var hooks presetHooks
	if ps.hooks != nil {
		hooks = ps.hooks(c, Options{HTTPClient: hc})
	}
	c = c.Resolve()
	r.Issuer = c.Issuer
	if ps.base == TypeOAuth2 {
		probeOAuth2(ctx, c, hc, r)
	} else {
		r.probeOIDC(ctx, c, or(hooks.discoveryURL, discoveryURL(c.Issuer)), hc)
	}
	if ps.probe != nil {
		ps.probe(ctx, c, hc, r)
	}
}

// presetHooks are a preset's extra steps in the generic flow. The zero
// value adds none.
type presetHooks struct {
	// discoveryURL is where the discovery document is when it is not under
	// the issuer: Entra ID's multi-tenant endpoints publish a document
	// whose issuer is a template.
	discoveryURL string
	// iss, when set, judges the iss of ID tokens (and of the RFC 9207
	// parameter, signed userinfo and logout tokens) instead of comparing it
	// with the issuer: Entra ID's issuer of each tenant, Google's two
	// spellings of its own.
	iss oidc.ISSVerifier
	// complete finishes the identity once the claims are mapped, at login
	// and at refresh: the IdP's own API calls and the preset's admission
	// checks. It refuses a user the configuration does not admit with a
	// *NotAllowedError.
	complete func(ctx context.Context, l login, id *Identity) error
	// resolvesOverage: complete resolves a groups overage and logs the
	// outcome itself.
	resolvesOverage bool
}

// login is what a preset's complete step is given.
type login struct {
	// hc is the provider's HTTP client (its timeout, its metrics).
	hc          *http.Client
	accessToken string
	// idToken are the verified ID token's claims; nil for plain OAuth2.
	idToken map[string]any
}

// presetTimeout bounds a preset's complete step as a whole, all pages of
// all its API calls together.
const presetTimeout = 15 * time.Second

// openPreset opens the generic provider a preset stands for, with its
// settings resolved and its hooks.
func openPreset(ps preset, cfg Config, opts Options) Provider {
	var hooks presetHooks
	if ps.hooks != nil {
		hooks = ps.hooks(cfg, opts)
	}
	if ps.base == TypeOAuth2 {
		return newOAuth2Provider(cfg.Resolve(), hooks, opts)
	}
	return newOIDCProvider(cfg.Resolve(), hooks, opts)
}

// complete runs an OpenID provider's preset complete step, if any,
// within presetTimeout.
func (p *oidcProvider) complete(ctx context.Context, accessToken string, idToken map[string]any, id *Identity) error {
	if p.hooks.complete == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, presetTimeout)
	defer cancel()
	hc := observedClient(p.opts, p.cfg.ID, p.opts.HTTPClient, nil)
	return p.hooks.complete(ctx, login{hc: hc, accessToken: accessToken, idToken: idToken}, id)
}

// NotAllowedError means the IdP signed the user in, but the provider's
// configuration does not admit them: a GitHub user outside orgs, a Google
// account outside hosted_domains, an Entra ID tenant not in tenants. The
// broker answers 403.
type NotAllowedError struct {
	Provider string
	// Reason names the setting that refused the user, for the log; it is
	// never shown to the user.
	Reason string
}

func (e *NotAllowedError) Error() string {
	return fmt.Sprintf("providers: %s: not allowed: %s", e.Provider, e.Reason)
}

// Resolve returns the configuration a provider runs with: for a preset
// type, the generic type it stands for, with the preset's settings filled
// in wherever c leaves a setting empty (auth_params merged, c's values
// winning); c itself for the generic types.
func (c Config) Resolve() Config {
	ps, ok := presets[c.Type]
	if !ok {
		return c
	}
	d := ps.defaults(c)
	r := c
	r.Type = ps.base
	fill(&r.Name, or(d.Name, ps.name))
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
func (c Config) unlessDerived(d Config, errs []error) []error {
	derived := map[string]bool{"issuer": c.Issuer == "" && d.Issuer != "",
		"authorization_endpoint": c.AuthorizationEndpoint == "" && d.AuthorizationEndpoint != "",
		"token_endpoint":         c.TokenEndpoint == "" && d.TokenEndpoint != "",
		"userinfo_endpoint":      c.UserinfoEndpoint == "" && d.UserinfoEndpoint != ""}
	return slices.DeleteFunc(errs, func(e error) bool {
		key, _, _ := strings.Cut(e.Error(), ":")
		return derived[key]
	})
}

// presetFields are the preset settings, with the types that use them.
var presetFields = []struct {
	key   string
	set   func(Config) bool
	types []string
}{
	{"base_url", func(c Config) bool { return c.BaseURL != "" }, []string{TypeGitHub, TypeGitLab, TypeEntra}},
	{"orgs", func(c Config) bool { return c.Orgs != nil }, []string{TypeGitHub}},
	{"hosted_domains", func(c Config) bool { return c.HostedDomains != nil }, []string{TypeGoogle}},
	{"tenant", func(c Config) bool { return c.Tenant != "" }, []string{TypeEntra}},
	{"tenants", func(c Config) bool { return c.Tenants != nil }, []string{TypeEntra}},
	{"group_overage", func(c Config) bool { return c.GroupOverage != "" }, []string{TypeEntra}},
	{"graph_url", func(c Config) bool { return c.GraphURL != "" }, []string{TypeEntra}},
}

// presetFieldsUnused reports preset settings on a type that does not use
// them.
func (c Config) presetFieldsUnused() []error {
	var errs []error
	for _, f := range presetFields {
		if f.set(c) && !slices.Contains(f.types, c.Type) {
			errs = append(errs, fmt.Errorf("%s: is only used by providers of type %s", f.key, strings.Join(f.types, ", ")))
		}
	}
	return errs
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

// PresetSettings describes what the preset type of c means for c: the
// generic type it stands for, every generic setting it fills in with its
// effective value (marked Configured where c overrides the preset), then
// what it does beyond settings. ok is false for the generic types.
func PresetSettings(c Config) (base string, settings []Setting, ok bool) {
	ps, ok := presets[c.Type]
	if !ok {
		return "", nil, false
	}
	d, r := ps.defaults(c), c.Resolve()
	add := func(key, preset, effective, configured string) {
		if preset != "" || configured != "" {
			settings = append(settings, Setting{Key: key, Value: effective, Configured: configured != ""})
		}
	}
	add("issuer", d.Issuer, r.Issuer, c.Issuer)
	if ps.hooks != nil {
		if h := ps.hooks(c, Options{}); h.discoveryURL != "" {
			add("discovery", h.discoveryURL, h.discoveryURL, "")
		}
	}
	add("authorization_endpoint", d.AuthorizationEndpoint, r.AuthorizationEndpoint, c.AuthorizationEndpoint)
	add("token_endpoint", d.TokenEndpoint, r.TokenEndpoint, c.TokenEndpoint)
	add("userinfo_endpoint", d.UserinfoEndpoint, r.UserinfoEndpoint, c.UserinfoEndpoint)
	add("scopes", strings.Join(d.Scopes, " "), strings.Join(r.scopes(), " "), strings.Join(c.Scopes, " "))
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
		settings = append(settings, Setting{Key: "claims.extra_groups", Value: or(strings.Join(parts, ", "), "none"),
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
	if err := checkURL(value, false); err != nil {
		p.add(key, "%q %v", value, err)
	}
}
