// Package providers is the only part of oidc-broker that speaks OpenID
// Connect and OAuth 2.0 to identity providers, and the contract of every
// provider type. Each provider turns a login request into an authorization
// URL and a callback into a normalized [Identity]; a [Registry] holds them
// by id. [Config] is the configuration of every type. The generic types,
// [OIDC] and [OAuth2], are here; local accounts (providers/local), LDAP
// (providers/ldap) and the IdP presets (providers/presets, [Hooks] over the
// generic types) are each a [Type] of their own package, and providers/all
// lists them all.
//
// Discovery is lazy: nothing is fetched until a provider is first used, a
// failure is retried with exponential backoff, and one provider being down
// never blocks the others.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Provider is one identity provider the broker can send users to.
//
// Implementations are safe for concurrent use.
type Provider interface {
	// ID is the provider's id from the configuration.
	ID() string
	// Name is the human-readable name for the selection page.
	Name() string
	// Status reports, without blocking, whether the provider can be used.
	Status() Status
	// AuthCodeURL begins a login: it returns the IdP's authorization URL
	// for the request. It fails with an *UnavailableError when the IdP's
	// metadata cannot be obtained.
	AuthCodeURL(ctx context.Context, req AuthRequest) (string, error)
	// Exchange finishes a login from the callback's query parameters and the
	// values kept server-side since AuthCodeURL.
	Exchange(ctx context.Context, cb Callback) (*Result, error)
}

// AuthRequest holds the values of one login attempt. The broker keeps them
// server-side and hands the same ones back in a Callback.
type AuthRequest struct {
	State       string // opaque, unguessable, single-use
	Nonce       string // bound into the ID token (OpenID Connect Core §3.1.2.1)
	Verifier    string // PKCE code_verifier (RFC 7636); only its S256 challenge is sent
	RedirectURI string // this provider's callback URL
	LoginHint   string // optional login_hint
	// MaxAge, when set, asks the IdP to authenticate the user anew unless
	// they did within it (max_age, with prompt=login: step-up,
	// docs/access.md). Exchange then verifies the ID token's auth_time.
	MaxAge *time.Duration
	// ACRValues, when set, asks for one of these authentication context
	// classes (acr_values); Exchange verifies the ID token's acr.
	ACRValues []string
	// FormURL is the absolute URL of the broker's own login form for this
	// provider, for providers whose credentials the broker collects
	// (local): AuthCodeURL sends the browser there. The broker chooses
	// the route; providers know none.
	FormURL string
}

// Callback is what the IdP sent back plus what the broker kept.
type Callback struct {
	// Params are the query (or form) parameters of the callback request.
	Params      url.Values
	Nonce       string
	Verifier    string
	RedirectURI string
	// MaxAge and ACRValues are what the login asked for (AuthRequest):
	// an ID token that does not meet them fails with a *StepUpError.
	MaxAge    *time.Duration
	ACRValues []string
}

// Result is a completed login.
type Result struct {
	Identity Identity
	// IDToken is the raw ID token, kept for RP-initiated logout.
	IDToken string
	// AccessToken is the access token, relayed to the apps that ask for
	// it (pass_access_token).
	AccessToken string
	// RefreshToken is the refresh token, when the IdP issued one.
	RefreshToken string
	// SessionID is the IdP's `sid` claim, if any (back-channel logout).
	SessionID string
	// Expiry is when the access token expires (zero if unknown).
	Expiry time.Time
}

// Status is a provider's availability, as far as it is known.
type Status struct {
	Available bool
	// Reason is a short, user-safe explanation when not available.
	Reason string
}

// UnavailableError means the IdP cannot be used now (discovery failed or is
// backing off). The broker answers 502 and shows the provider disabled.
type UnavailableError struct {
	Provider   string
	RetryAfter time.Time
	Err        error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("providers: %s is unavailable: %v", e.Provider, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// AuthError is an error response from the IdP's authorization endpoint
// (RFC 6749 §4.1.2.1), such as access_denied or login_required.
type AuthError struct {
	Code        string
	Description string
}

func (e *AuthError) Error() string {
	if e.Description == "" {
		return "providers: the identity provider answered " + e.Code
	}
	return fmt.Sprintf("providers: the identity provider answered %s: %s", e.Code, e.Description)
}

// TokenError is an error response from the IdP's token endpoint (RFC 6749
// §5.2). invalid_grant means the code was refused (replayed, expired, or
// issued to someone else); invalid_client and unauthorized_client mean the
// broker's client registration or credentials are wrong.
type TokenError struct {
	Code        string
	Description string
}

func (e *TokenError) Error() string {
	if e.Description == "" {
		return "providers: the token endpoint answered " + e.Code
	}
	return fmt.Sprintf("providers: the token endpoint answered %s: %s", e.Code, e.Description)
}

// Misconfigured reports whether the error is the broker's configuration's
// fault rather than the user's or an attacker's.
func (e *TokenError) Misconfigured() bool {
	return e.Code == "invalid_client" || e.Code == "unauthorized_client" || e.Code == "unsupported_grant_type"
}

// Errors a callback can fail with, besides *AuthError and verification errors
// from the OpenID Connect library. All of them mean "refuse the login".
var (
	// ErrIssuerMismatch: the RFC 9207 `iss` parameter names another issuer
	// (a mix-up attack) or is missing although the IdP announced it.
	ErrIssuerMismatch = errors.New("providers: authorization response iss parameter does not match the provider (RFC 9207)")
	// ErrMissingCode: the callback carried neither a code nor an error.
	ErrMissingCode = errors.New("providers: callback without code")
	// ErrCodeHash: the ID token's c_hash does not match the code.
	ErrCodeHash = errors.New("providers: ID token c_hash does not match the authorization code")
	// ErrUserinfoSubject: the userinfo sub differs from the ID token's.
	ErrUserinfoSubject = errors.New("providers: userinfo sub does not match the ID token's sub")
	// ErrMissingIDToken: the token response had no id_token.
	ErrMissingIDToken = errors.New("providers: token response without id_token")
)

// StepUpError means the IdP signed the user in, but not as the login asked
// (AuthRequest.MaxAge, ACRValues): no auth_time, or one too old; no acr,
// or another one. The broker answers 403: this IdP cannot satisfy the
// route.
type StepUpError struct {
	Provider string
	Reason   string // what was asked and what came back; no token
}

func (e *StepUpError) Error() string {
	return fmt.Sprintf("providers: %s: the sign-in does not meet the route's requirements: %s", e.Provider, e.Reason)
}

// stepUpSkew is the clock skew tolerated when an auth_time is checked
// against max_age.
const stepUpSkew = 30 * time.Second

// CheckStepUp checks a verified identity's AuthnTime and ACR against what
// a login asked (maxAge nil: no max_age; acr empty: any), at now.
func CheckStepUp(id Identity, maxAge *time.Duration, acr []string, now time.Time) error {
	if maxAge != nil {
		switch {
		case id.AuthnTime.IsZero():
			return &StepUpError{Provider: id.Provider, Reason: fmt.Sprintf("max_age %s asked, no auth_time in the ID token", *maxAge)}
		case now.Sub(id.AuthnTime) > *maxAge+stepUpSkew:
			return &StepUpError{Provider: id.Provider, Reason: fmt.Sprintf("max_age %s asked, authenticated %s ago", *maxAge, now.Sub(id.AuthnTime).Round(time.Second))}
		}
	}
	if len(acr) > 0 && !slices.Contains(acr, id.ACR) {
		got := id.ACR
		if got == "" {
			got = "none"
		}
		return &StepUpError{Provider: id.Provider, Reason: fmt.Sprintf("acr one of %v asked, got %s", acr, truncated(got, 64))}
	}
	return nil
}

// truncated cuts s to at most n bytes (a claim from an IdP, in a log line).
func truncated(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
