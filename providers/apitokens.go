package providers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// API clients' access tokens (docs/api-clients.md). A provider whose
// configuration has api_tokens lets scripts and services call the apps
// behind the broker with `Authorization: Bearer <access token>` issued by
// its IdP. The provider gives what checking such a token needs (its
// issuer, its key set, its introspection endpoint, its claim mapping);
// package broker/bearer does the checks and keeps the results.

// APITokensConfig is a provider's api_tokens: which access tokens of its
// IdP API clients may present. Off when absent.
type APITokensConfig struct {
	// Audiences are the accepted `aud` values of JWT access tokens (the
	// API's identifier at the IdP: Keycloak's client id or audience
	// mapper, Entra ID's Application ID URI or client id, Okta's
	// authorization server audience). A token must name at least one.
	// Required.
	Audiences []string `yaml:"audiences"`
	// Scopes, when set, must all be granted to the token (its `scope`
	// claim, or `scp` as Entra ID and Okta write it).
	Scopes []string `yaml:"scopes"`
	// Introspection accepts opaque (non-JWT) access tokens by asking the
	// IdP's RFC 7662 introspection endpoint, authenticated with this
	// provider's client_id and client_secret. Default false: opaque tokens
	// are refused.
	Introspection bool `yaml:"introspection"`
	// IntrospectionCache is how long an active introspection answer is
	// reused (at most until the token's exp). Default 30s.
	IntrospectionCache time.Duration `yaml:"introspection_cache"`
}

// DefaultIntrospectionCache is APITokensConfig.IntrospectionCache's default.
const DefaultIntrospectionCache = 30 * time.Second

// apiTokenTypes are the provider types whose access tokens the broker can
// check: OpenID providers, whose keys and issuer discovery gives.
var apiTokenTypes = []string{TypeOIDC, "keycloak", "okta", "entra"}

// apiTokensProblems reports the problems of c.APITokens, each prefixed
// with its YAML key.
func (c Config) apiTokensProblems() []error {
	a := c.APITokens
	if a == nil {
		return nil
	}
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("api_tokens.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !slices.Contains(apiTokenTypes, c.providerType()) {
		errs = append(errs, fmt.Errorf("api_tokens: is not supported by providers of type %s (only %v: an OpenID provider's issuer and keys check the tokens)",
			c.providerType(), apiTokenTypes))
	}
	if len(a.Audiences) == 0 {
		add("audiences", "is required: the aud values of the access tokens API clients present (the API's identifier at the IdP)")
	}
	for i, v := range a.Audiences {
		if v == "" {
			add(fmt.Sprintf("audiences[%d]", i), "must not be empty")
		}
	}
	for i, v := range a.Scopes {
		if v == "" || containsSpace(v) {
			add(fmt.Sprintf("scopes[%d]", i), "%q is not a valid scope", v)
		}
	}
	if a.Introspection && c.authMethod() != AuthClientSecretBasic && c.authMethod() != AuthClientSecretPost {
		add("introspection", "needs the provider's client_secret (token_endpoint_auth_method client_secret_basic or client_secret_post)")
	}
	if a.IntrospectionCache < 0 {
		add("introspection_cache", "must not be negative")
	}
	return errs
}

func containsSpace(s string) bool {
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '"' || r == '\\' {
			return true
		}
	}
	return false
}

// TokenIssuer is a provider whose IdP's access tokens API clients may
// present (Config.APITokens). Its methods make network calls only to
// discover the IdP (once) and, for Introspect, to ask it.
type TokenIssuer interface {
	// APITokens is the provider's api_tokens configuration.
	APITokens() APITokensConfig
	// TokenKeys returns what checking a JWT access token needs: the issuer
	// check, the IdP's key set (the one ID tokens are checked with: JWKS
	// fetches rate-limited) and the accepted algorithms. It fails with an
	// *UnavailableError when the IdP cannot be discovered.
	TokenKeys(ctx context.Context) (TokenKeys, error)
	// Introspect asks the IdP about an opaque token (RFC 7662) with the
	// provider's client credentials and returns the answer's claims.
	Introspect(ctx context.Context, token string) (*oidc.IntrospectionResponse, error)
	// IdentityOf maps the claims of an access token (or an introspection
	// answer) to the identity, as the provider maps an ID token's.
	IdentityOf(claims map[string]any) Identity
}

// TokenKeys is what checking a provider's JWT access tokens needs.
type TokenKeys struct {
	// IssuerOK judges the token's iss: the provider's issuer, or as its
	// preset accepts it (Entra ID's tenants).
	IssuerOK func(iss string) bool
	// KeySet verifies signatures with the IdP's published keys.
	KeySet oidc.KeySet
	// Algorithms are the accepted (asymmetric) signature algorithms.
	Algorithms []string
}

var _ TokenIssuer = (*oidcProvider)(nil)

// ErrNoIntrospection: the IdP's discovery document names no
// introspection_endpoint.
var ErrNoIntrospection = errors.New("providers: the IdP publishes no introspection_endpoint")

// APITokens implements TokenIssuer.
func (p *oidcProvider) APITokens() APITokensConfig {
	if p.cfg.APITokens == nil {
		return APITokensConfig{}
	}
	return *p.cfg.APITokens
}

// TokenKeys implements TokenIssuer.
func (p *oidcProvider) TokenKeys(ctx context.Context) (TokenKeys, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return TokenKeys{}, err
	}
	v := c.rp.IDTokenVerifier()
	return TokenKeys{IssuerOK: func(iss string) bool { return p.issuerOK(c, iss) }, KeySet: v.KeySet,
		Algorithms: slices.Clone(v.SupportedSignAlgs)}, nil
}

// Introspect implements TokenIssuer through zitadel's resource server
// client, over the provider's HTTP client.
func (p *oidcProvider) Introspect(ctx context.Context, token string) (*oidc.IntrospectionResponse, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	if c.introspectionURL == "" {
		return nil, ErrNoIntrospection
	}
	hc := c.rp.HttpClient() // bounded bodies, observed (discover)
	srv, err := rs.NewResourceServerClientCredentials(ctx, p.cfg.Issuer, p.cfg.ClientID, p.cfg.ClientSecret,
		rs.WithClient(hc), rs.WithStaticEndpoints(c.rp.OAuthConfig().Endpoint.TokenURL, c.introspectionURL))
	if err != nil {
		return nil, fmt.Errorf("providers: %s: introspection: %w", p.cfg.ID, err)
	}
	res, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, srv, token)
	if err != nil {
		return nil, fmt.Errorf("providers: %s: introspection: %w", p.cfg.ID, err)
	}
	return res, nil
}

// IdentityOf implements TokenIssuer. The claims stand for both sources of
// the mapping, so that claims.source does not hide an access token's
// claims.
func (p *oidcProvider) IdentityOf(claims map[string]any) Identity {
	id := p.mapper.identity(claims, claims)
	id.AuthnTime = authTimeOf(claims)
	id.ACR, _ = claims["acr"].(string)
	return id
}

// authTimeOf is the auth_time claim of claims, zero when absent or not a
// number.
func authTimeOf(claims map[string]any) time.Time {
	switch v := claims["auth_time"].(type) {
	case float64:
		if v > 0 {
			return time.Unix(int64(v), 0).UTC()
		}
	case int64:
		if v > 0 {
			return time.Unix(v, 0).UTC()
		}
	}
	return time.Time{}
}
