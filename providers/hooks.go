package providers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Hooks are the extra steps a preset (package providers/presets) adds to
// the generic OpenID Connect or OAuth 2.0 login: there is no second login
// flow. The zero value adds none.
type Hooks struct {
	// DiscoveryURL is where the discovery document is when it is not under
	// the issuer: Entra ID's multi-tenant endpoints publish a document
	// whose issuer is a template.
	DiscoveryURL string
	// Issuer, when set, judges the iss of ID tokens (and of the RFC 9207
	// parameter, signed userinfo and logout tokens) instead of comparing it
	// with the issuer: Entra ID's issuer of each tenant, Google's two
	// spellings of its own.
	Issuer oidc.ISSVerifier
	// Complete finishes the identity once the claims are mapped, at login,
	// at refresh and for an API client's bearer token (Login.APIToken),
	// within CompleteTimeout: the IdP's own API calls and the preset's
	// admission checks. It refuses a user the configuration does not admit
	// with a *NotAllowedError.
	Complete func(ctx context.Context, l Login, id *Identity) error
	// ResolvesOverage: Complete resolves a groups overage and logs the
	// outcome itself.
	ResolvesOverage bool
}

// Login is what Hooks.Complete is given.
type Login struct {
	// HTTPClient is the provider's HTTP client (its timeout, its metrics).
	HTTPClient  *http.Client
	AccessToken string
	// IDToken are the verified ID token's claims; nil for plain OAuth2.
	// With APIToken, the claims of an API client's verified access token
	// (or its introspection answer).
	IDToken map[string]any
	// APIToken: the identity is an API client's bearer token's
	// (api_tokens), not a login's. Complete admits or refuses it and
	// decides email_verified from the claims as at a login, but makes no
	// API call on the user's behalf (AccessToken is empty): the token was
	// issued for the app's API, not for the IdP's.
	APIToken bool
}

// CompleteTimeout bounds Hooks.Complete as a whole, all pages of all its
// API calls together.
const CompleteTimeout = 15 * time.Second

// OpenOIDC returns the generic OpenID provider of c, which the type "oidc"
// (or a preset's check) accepted, with hooks.
func OpenOIDC(c Config, hooks Hooks, opts Options) Provider { return newOIDCProvider(c, hooks, opts) }

// OpenOAuth2 returns the generic OAuth 2.0 provider of c, which the type
// "oauth2" (or a preset's check) accepted, with hooks.
func OpenOAuth2(c Config, hooks Hooks, opts Options) Provider {
	return newOAuth2Provider(c, hooks, opts)
}

// ProbeOIDC adds to r what the OpenID provider of c tells about itself, its
// discovery document read from hooks.DiscoveryURL when set (see
// Types.Probe).
func ProbeOIDC(ctx context.Context, c Config, hooks Hooks, hc *http.Client, r *Report) {
	r.probeOIDC(ctx, c, or(hooks.DiscoveryURL, discoveryURL(c.Issuer)), hc)
}

// complete runs an OpenID provider's preset complete step, if any,
// within CompleteTimeout.
func (p *oidcProvider) complete(ctx context.Context, accessToken string, idToken map[string]any, id *Identity) error {
	if p.hooks.Complete == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, CompleteTimeout)
	defer cancel()
	hc := observedClient(p.opts, p.cfg.ID, p.opts.HTTPClient, nil)
	return p.hooks.Complete(ctx, Login{HTTPClient: hc, AccessToken: accessToken, IDToken: idToken}, id)
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
