package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	// RequireATJWT accepts only JWTs typed at+jwt (RFC 9068), which an ID
	// token never is. Required to name the provider's own client_id in
	// Audiences: an ID token's aud is the client_id.
	RequireATJWT bool `yaml:"require_at_jwt"`
	// Introspection accepts opaque (non-JWT) access tokens by asking the
	// IdP's RFC 7662 introspection endpoint, authenticated with this
	// provider's client_id and client_secret. Default false: opaque tokens
	// are refused. At most one provider introspects: an opaque token names
	// no issuer, and is sent to that provider's IdP only.
	Introspection bool `yaml:"introspection"`
	// Clients are the client_id values of the introspection answers
	// accepted without an aud among Audiences (RFC 7662's aud is
	// optional): tokens the IdP issued to these clients. Default none: an
	// answer must name one of Audiences.
	Clients []string `yaml:"clients"`
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
		switch {
		case v == "":
			add(fmt.Sprintf("audiences[%d]", i), "must not be empty")
		case strings.EqualFold(v, c.ClientID) && !a.RequireATJWT:
			add(fmt.Sprintf("audiences[%d]", i), "%q is the provider's own client_id, the aud of its ID tokens, which would pass as access tokens: "+
				"name the API's own identifier at the IdP (its own client, or an audience mapper), or set api_tokens.require_at_jwt", v)
		}
	}
	for i, v := range a.Clients {
		if v == "" {
			add(fmt.Sprintf("clients[%d]", i), "must not be empty")
		}
	}
	if len(a.Clients) > 0 && !a.Introspection {
		add("clients", "is only used with introspection")
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
	// answer) to the identity, as the provider maps an ID token's, and
	// admits it as a login is admitted: the preset's Hooks.Complete runs
	// on the claims (Entra ID's tenants and email_verified), with no API
	// call made with the token (Login.APIToken). It fails with a
	// *NotAllowedError for an identity the configuration does not admit.
	IdentityOf(ctx context.Context, claims map[string]any) (Identity, error)
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
	hc := noRedirects(c.rp.HttpClient()) // bounded bodies, observed (discover)
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

// noRedirects is hc, not following redirects: a redirect (307, 308) would
// send the token and the client's credentials again, where the IdP did
// not publish its endpoint.
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// IdentityOf implements TokenIssuer. The claims stand for both sources of
// the mapping, so that claims.source does not hide an access token's
// claims. The preset's complete step admits the identity as at a login:
// a bearer token is no way around a preset's admission.
func (p *oidcProvider) IdentityOf(ctx context.Context, claims map[string]any) (Identity, error) {
	id := p.mapper.identity(claims, claims)
	if p.hooks.Complete != nil {
		ctx, cancel := context.WithTimeout(ctx, CompleteTimeout)
		defer cancel()
		hc := observedClient(p.opts, p.cfg.ID, p.opts.HTTPClient, nil)
		if err := p.hooks.Complete(ctx, Login{HTTPClient: hc, IDToken: claims, APIToken: true}, &id); err != nil {
			return Identity{}, err
		}
	}
	id.AuthnTime = authTimeOf(claims)
	id.ACR, _ = claims["acr"].(string)
	return id, nil
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
