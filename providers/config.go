package providers

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/crypto"
)

// Token endpoint authentication methods (OpenID Connect Core 1.0 §9).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthNone              = "none"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Config describes one identity provider. It is plain data, decoded from the
// broker's YAML `providers:` list; Types.Open validates it and builds the runtime
// provider.
type Config struct {
	// ID names the provider in URLs (/oauth2/start/{id}, /oauth2/callback/{id})
	// and in the relayed subject "<id>:<sub>". Lower-case letters, digits,
	// '-' and '_'; at most 64 characters. Required.
	ID string `yaml:"id"`
	// Name is shown on the selection page ("Sign in with <Name>"). Defaults to
	// ID; for a preset, to the IdP's name ("GitHub", "Microsoft").
	Name string `yaml:"name"`
	// Type is "oidc" (default: an OpenID Provider, found by discovery) or
	// "oauth2" (a plain OAuth 2.0 server without ID tokens, such as
	// GitHub: its endpoints are configured and the identity comes from its
	// user API through Claims), "local" (static users from a bcrypt
	// htpasswd file, signing in on the broker's own form; see HtpasswdFile),
	// "ldap" (users of an LDAP directory or Active Directory, on the same
	// form; see LDAP), or an IdP preset: "github", "google", "entra",
	// "gitlab", "keycloak", "okta" (package providers/presets,
	// docs/providers.md), which stands for oidc or oauth2 with the IdP's
	// settings filled in where these are left empty.
	Type string `yaml:"type"`
	// Issuer is the OpenID Provider's issuer URL, exactly as its discovery
	// document states it (a trailing slash matters). Required for "oidc";
	// optional for "oauth2", where it is only compared with an RFC 9207
	// iss parameter.
	Issuer string `yaml:"issuer"`
	// AuthorizationEndpoint, TokenEndpoint and UserinfoEndpoint are the
	// endpoints of an "oauth2" provider (required there, unused for "oidc").
	AuthorizationEndpoint string `yaml:"authorization_endpoint"`
	TokenEndpoint         string `yaml:"token_endpoint"`
	UserinfoEndpoint      string `yaml:"userinfo_endpoint"`
	// ClientID is the broker's client_id at this IdP. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the broker's client secret; use ${VAR} in the file.
	// Required unless TokenEndpointAuthMethod is "none".
	ClientSecret string `yaml:"client_secret"`
	// Scopes requested. Default: openid, email, profile. "openid" is always added.
	Scopes []string `yaml:"scopes"`
	// TokenEndpointAuthMethod is client_secret_basic (default),
	// client_secret_post, private_key_jwt, or none (a public client; PKCE
	// protects the code).
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	// PrivateKeyFile is the PEM private key (RSA, ECDSA P-256 or Ed25519;
	// PKCS#1 or PKCS#8) that signs the client assertion with
	// private_key_jwt. Its public key is registered at the IdP.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PrivateKeyID is the kid of that key, as registered at the IdP.
	PrivateKeyID string `yaml:"private_key_id"`
	// Userinfo controls the userinfo call after the code exchange: "auto"
	// (default: call it when the IdP publishes a userinfo_endpoint), "always"
	// (fail the login when it cannot be read) or "never".
	Userinfo string `yaml:"userinfo"`
	// IDTokenSigningAlgs restricts the accepted ID token algorithms. Default:
	// the asymmetric algorithms the IdP advertises. Symmetric (HS*) and "none"
	// are never accepted.
	IDTokenSigningAlgs []string `yaml:"id_token_signing_algs"`
	// RequireIssParameter refuses callbacks without the RFC 9207 `iss`
	// parameter even when the IdP's metadata does not announce it.
	RequireIssParameter bool `yaml:"require_iss_parameter"`
	// AuthParams are extra parameters of the authorization request, e.g.
	// {access_type: offline, prompt: consent} for Google to issue a
	// refresh token, or {hd: example.com}. The parameters the flow itself
	// sets (state, nonce, PKCE, redirect_uri, client_id, response_type,
	// scope, login_hint) cannot be overridden.
	AuthParams map[string]string `yaml:"auth_params"`
	// Claims maps the IdP's claims to the normalized identity.
	Claims ClaimsConfig `yaml:"claims"`
	// APITokens, when set, lets API clients present this IdP's access
	// tokens (`Authorization: Bearer`) instead of a session
	// (docs/api-clients.md). Off by default.
	APITokens *APITokensConfig `yaml:"api_tokens"`

	// The settings of the IdP presets (types github, google, entra, gitlab,
	// keycloak, okta: docs/providers.md). A preset fills the generic
	// settings above that are left empty; each of these is refused on the
	// types that do not use it.

	// BaseURL is where a self-hosted IdP is: a GitHub Enterprise Server
	// (https://github.example.com) or a self-managed GitLab; for entra,
	// the Microsoft authority of a national cloud. Default: github.com,
	// https://gitlab.com, https://login.microsoftonline.com.
	BaseURL string `yaml:"base_url"`
	// Orgs (github) admits only members of these organisations ("acme")
	// or teams ("acme/platform"), and relays only those organisations'
	// groups. Default: anyone with a GitHub account.
	Orgs []string `yaml:"orgs"`
	// HostedDomains (google) admits only Google Workspace accounts of
	// these domains, by the ID token's hd claim; "*" admits any Workspace
	// account but no consumer account. Default: any Google account.
	HostedDomains []string `yaml:"hosted_domains"`
	// Tenant (entra) is the directory (tenant) id, or "organizations" or
	// "common" for a multi-tenant app (then Tenants lists the admitted
	// tenants), or "consumers" for personal Microsoft accounts. Required.
	Tenant string `yaml:"tenant"`
	// Tenants (entra, with organizations or common) are the tenant ids
	// whose users are admitted; each token's issuer must be
	// <base_url>/<its tid>/v2.0. Required there.
	Tenants []string `yaml:"tenants"`
	// GroupOverage (entra) is what happens when a user's groups did not fit
	// in the ID token: "ids" (default: their object ids from Microsoft
	// Graph, getMemberObjects, delegated User.Read), "names" (their
	// display names, transitiveMemberOf, GroupMember.Read.All) or "off"
	// (the identity is relayed with groups_incomplete).
	GroupOverage string `yaml:"group_overage"`
	// GraphURL (entra) is Microsoft Graph. Default https://graph.microsoft.com.
	GraphURL string `yaml:"graph_url"`

	// The settings of a provider of type "local" (docs/local-users.md);
	// unused by the other types. Its files are read at start-up.

	// HtpasswdFile is the Apache htpasswd file of the users; bcrypt entries
	// only (htpasswd -B). Required for "local".
	HtpasswdFile string `yaml:"htpasswd_file"`
	// GroupsFile is an Apache group file: lines "group: alice bob".
	GroupsFile string `yaml:"groups_file"`
	// Groups maps group names to usernames, in addition to GroupsFile.
	Groups map[string][]string `yaml:"groups"`
	// BasicAuthPaths are the paths where API clients may authenticate as
	// these users with HTTP Basic instead of a session: "/api/" (a subtree)
	// or "/metrics" (one path). Default: none. The providers package does
	// not use them; the broker, whose routes they are among, checks them.
	BasicAuthPaths []string `yaml:"basic_auth_paths"`

	// LDAP is the directory of a provider of type "ldap"
	// (docs/ldap.md). Its users sign in on the broker's form, and with
	// HTTP Basic on BasicAuthPaths, as local users do.
	LDAP *LDAPConfig `yaml:"ldap"`

	// The sign-in page's settings for this provider. The providers package
	// does not use them; the broker validates them with package selection
	// (docs/selection.md).

	// Domains are the email domains of this provider's users, for
	// home-realm discovery: "example.com" exactly (case-insensitive), or
	// ".example.com" for the domain and its subdomains. A domain may lead
	// to one provider only.
	Domains []string `yaml:"domains"`
	// Icon is a local PNG, SVG, ICO or WebP file (at most 64 KiB) shown on
	// the button, read at start-up and served by the broker; never a URL.
	Icon string `yaml:"icon"`
	// Group heads this provider's section of the sign-in page's list view.
	Group string `yaml:"group"`
}

// flowParams are the authorization request parameters the flow sets.
var flowParams = []string{"state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri",
	"client_id", "response_type", "response_mode", "scope", "login_hint", "request", "request_uri"}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// asymmetricAlgs are the JWS algorithms accepted for ID tokens.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// sharedProblems reports, each prefixed with its YAML key, what every type
// shares: the id, and no setting of another type. The settings a
// configuration has are all Config's fields, so this is where it is known
// which type reads which (Types.Validate; each Type checks its own).
func (c Config) sharedProblems() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.ID == "":
		add("id", "is required")
	case !idPattern.MatchString(c.ID):
		add("id", "%q must be lower-case letters, digits, '-' or '_' (at most 64, starting with a letter or digit)", c.ID)
	}
	errs = append(errs, c.presetFieldsUnused()...)
	errs = append(errs, c.apiTokensProblems()...) // apitokens.go
	switch c.Type {
	case TypeLocal:
		errs = append(errs, c.passwordProviderProblems(TypeLocal)...)
	case TypeLDAP:
		return append(append(errs, c.passwordProviderProblems(TypeLDAP)...), c.localFieldsUnused()...)
	default:
		errs = append(errs, c.localFieldsUnused()...)
	}
	if c.LDAP != nil {
		add("ldap", "is only used by providers of type ldap")
	}
	return errs
}

// redirectProblems reports the problems of an oidc or oauth2 configuration
// (a preset's, once resolved), each prefixed with its YAML key.
func (c Config) redirectProblems() []error { return c.genericProblems(true) }

// unknownTypeProblems reports the problems of a configuration of a type
// nobody knows as for an OpenID provider, except for the issuer.
func (c Config) unknownTypeProblems() []error { return c.genericProblems(false) }

// genericProblems reports the problems of an oidc or oauth2 configuration,
// the issuer's only when typeKnown.
func (c Config) genericProblems(typeKnown bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	oauth2Only := c.Type == TypeOAuth2
	switch {
	case !typeKnown:
	case c.Issuer == "" && !oauth2Only:
		add("issuer", "is required")
	case c.Issuer != "":
		if err := checkIssuer(c.Issuer); err != nil {
			add("issuer", "%q %v", c.Issuer, err)
		}
	}
	endpoints := []struct{ key, value string }{
		{"authorization_endpoint", c.AuthorizationEndpoint}, {"token_endpoint", c.TokenEndpoint}, {"userinfo_endpoint", c.UserinfoEndpoint}}
	for _, e := range endpoints {
		switch {
		case oauth2Only && e.value == "":
			add(e.key, "is required for a provider of type oauth2")
		case !oauth2Only && e.value != "":
			add(e.key, "is only used by providers of type oauth2 (an OpenID provider's endpoints come from discovery)")
		case e.value != "":
			if err := CheckURL(e.value, true); err != nil {
				add(e.key, "%q %v", e.value, err)
			}
		}
	}
	if c.ClientID == "" {
		add("client_id", "is required")
	}
	switch c.TokenEndpointAuthMethod {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
		if c.ClientSecret == "" {
			add("client_secret", "is required with token_endpoint_auth_method %s (use \"none\" for a public client)", c.authMethod())
		}
	case AuthNone:
		if c.ClientSecret != "" {
			add("client_secret", "must be empty with token_endpoint_auth_method none")
		}
	case AuthPrivateKeyJWT:
		if c.ClientSecret != "" {
			add("client_secret", "must be empty with token_endpoint_auth_method private_key_jwt")
		}
		if c.PrivateKeyFile == "" {
			add("private_key_file", "is required with token_endpoint_auth_method private_key_jwt")
		} else if _, err := loadPrivateKey(c.PrivateKeyFile); err != nil {
			add("private_key_file", "%v", err)
		}
	default:
		add("token_endpoint_auth_method", "%q is not one of client_secret_basic, client_secret_post, private_key_jwt, none", c.TokenEndpointAuthMethod)
	}
	if c.PrivateKeyFile != "" && c.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		add("private_key_file", "is only used with token_endpoint_auth_method private_key_jwt")
	}
	switch c.Userinfo {
	case "", "auto", "always", "never":
	default:
		add("userinfo", "%q is not one of auto, always, never", c.Userinfo)
	}
	for i, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			add(fmt.Sprintf("scopes[%d]", i), "%q is not a valid scope", s)
		}
	}
	if oauth2Only && c.authMethod() == AuthPrivateKeyJWT {
		add("token_endpoint_auth_method", "private_key_jwt is supported for OpenID providers only")
	}
	for _, e := range c.Claims.validate(oauth2Only) {
		errs = append(errs, errors.New(e))
	}
	for _, k := range slices.Sorted(maps.Keys(c.AuthParams)) {
		if slices.Contains(flowParams, k) {
			add("auth_params."+k, "is set by the broker itself and cannot be configured")
		}
	}
	for i, a := range c.IDTokenSigningAlgs {
		if !slices.Contains(asymmetricAlgs, a) {
			add(fmt.Sprintf("id_token_signing_algs[%d]", i), "%q is not one of %s", a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	return errs
}

// loadPrivateKey reads a PEM private key file and checks that it parses.
func loadPrivateKey(path string) ([]byte, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	if _, _, err := crypto.BytesToPrivateKey(pemBytes); err != nil {
		return nil, fmt.Errorf("%q is not a PEM RSA, ECDSA or Ed25519 private key: %w", path, err)
	}
	return pemBytes, nil
}

func checkIssuer(issuer string) error { return CheckURL(issuer, false) }

// CheckURL accepts an https URL (http on loopback hosts, for tests and
// demos) without userinfo or fragment, and without a query unless allowed.
func CheckURL(raw string, allowQuery bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname())):
		return errors.New("must be an https URL (http only for loopback hosts)")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil || u.Fragment != "" || (u.RawQuery != "" && !allowQuery):
		return errors.New("must not contain userinfo, query or fragment")
	}
	return nil
}

// IsLoopback reports whether host names this machine: plain http (and
// plain LDAP) is accepted there only.
func IsLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

func (c Config) authMethod() string {
	if c.TokenEndpointAuthMethod == "" {
		return AuthClientSecretBasic
	}
	return c.TokenEndpointAuthMethod
}

func (c Config) providerType() string {
	if c.Type == "" {
		return TypeOIDC
	}
	return c.Type
}

// SignsInWithPassword reports whether the provider's users sign in with a
// password on the broker's own form (and HTTP Basic): types local and ldap.
func (c Config) SignsInWithPassword() bool {
	return c.Type == TypeLocal || c.Type == TypeLDAP
}

// DisplayName is the name shown on the sign-in page: Name, or the id.
func (c Config) DisplayName() string {
	if c.Name == "" {
		return c.ID
	}
	return c.Name
}

// RequestedScopes are the scopes the authorization request asks for:
// Scopes, or openid, email and profile; openid always, but for oauth2.
func (c Config) RequestedScopes() []string {
	scopes := c.Scopes
	if c.Type == TypeOAuth2 {
		return scopes // no openid: there is no ID token
	}
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile"}
	}
	if !slices.Contains(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	return scopes
}

// The preset types, values of Config.Type.
const (
	TypeGitHub   = "github"
	TypeGoogle   = "google"
	TypeEntra    = "entra"
	TypeGitLab   = "gitlab"
	TypeKeycloak = "keycloak"
	TypeOkta     = "okta"
)

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
