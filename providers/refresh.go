package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Refresher is a provider that can renew a login with its refresh token
// (RFC 6749 §6, OpenID Connect Core §12), reading the user's claims afresh.
type Refresher interface {
	// Refresh redeems the refresh token and returns the renewed login: the
	// identity as the IdP states it now, the new tokens (the old refresh
	// token when the IdP did not rotate it; the old ID token when it sent
	// none), and when the new access token expires. Identity.AuthTime is
	// left zero: the caller keeps the time of the original sign-in.
	//
	// An error that wraps ErrRefreshRefused means the login cannot be
	// renewed (the IdP refused the token, or its answer failed
	// verification); any other error is passing (the IdP unreachable).
	Refresh(ctx context.Context, req RefreshRequest) (*Result, error)
}

// RefreshRequest is what a refresh needs from the session.
type RefreshRequest struct {
	RefreshToken string
	// Subject is the session's sub: a refreshed ID token or userinfo that
	// names anyone else is refused.
	Subject string
	// IDToken is the session's current ID token, verified when it was
	// issued: its nonce is the only one a refreshed ID token may repeat,
	// and its claims stand in when the IdP sends no new ID token.
	IDToken string
}

// Refresh errors.
var (
	// ErrRefreshRefused: the login cannot be renewed; the user must sign in
	// again. Wrapped together with the cause (a *TokenError, or a failed
	// check of the new ID token).
	ErrRefreshRefused = errors.New("providers: refresh refused")
	// ErrRefreshSubject: the refreshed ID token names another user.
	ErrRefreshSubject = errors.New("providers: refreshed ID token sub differs from the session's")
	// ErrRefreshNonce: the refreshed ID token carries a nonce other than
	// the original one (OpenID Connect Core §12.2).
	ErrRefreshNonce = errors.New("providers: refreshed ID token nonce differs from the original")
)

var _ Refresher = (*oidcProvider)(nil)

// Refresh implements Refresher. The token request authenticates as the
// code exchange does. The new ID token is verified like the first one
// (signature, iss, aud, azp, exp, iat, at_hash) except for the nonce, which
// OpenID Connect Core §12.2 lets a refreshed ID token omit: when present it
// must equal the original's. zitadel's rp.RefreshTokens cannot express that
// (its nonce check is one exact value), hence the token call here.
func (p *oidcProvider) Refresh(ctx context.Context, req RefreshRequest) (*Result, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := p.refreshGrant(ctx, c, req.RefreshToken)
	if err != nil {
		return nil, err
	}
	refused := func(err error) error {
		return fmt.Errorf("providers: %s: refresh: %w: %w", p.cfg.ID, ErrRefreshRefused, err)
	}
	old := unverifiedClaims(req.IDToken) // verified when it was issued; kept server-side since
	res := &Result{IDToken: req.IDToken, RefreshToken: req.RefreshToken, AccessToken: tok.AccessToken}
	if tok.RefreshToken != "" { // rotated
		res.RefreshToken = tok.RefreshToken
	}
	claims := old
	var fresh map[string]any // a new ID token's claims
	var idExpiry time.Time
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		v := *c.rp.IDTokenVerifier()
		v.Nonce = nil // checked below
		idc, err := rp.VerifyTokens[*idClaims](ctx, tok.AccessToken, raw, &v)
		switch {
		case err != nil:
			return nil, refused(err)
		case idc.subject != req.Subject:
			return nil, refused(ErrRefreshSubject)
		case idc.nonce != "" && idc.nonce != stringClaim(old, "nonce"):
			return nil, refused(ErrRefreshNonce)
		}
		claims, res.IDToken, idExpiry = idc.claims, raw, idc.GetExpiration()
		fresh = claims
	}
	res.SessionID = stringClaim(claims, "sid")
	var info map[string]any
	if p.wantsUserinfo(c, fresh) { // the old ID token's claims may be stale: userinfo is read
		info, err = p.userinfo(ctx, c, tok.AccessToken, tok.TokenType, req.Subject)
		if errors.Is(err, ErrUserinfoSubject) {
			return nil, refused(err)
		}
		if err != nil {
			return nil, fmt.Errorf("providers: %s: refresh: userinfo: %w", p.cfg.ID, err)
		}
	}
	res.Identity = p.mapper.identity(claims, info)
	// A preset's step refuses a user it no longer admits, or a token it
	// cannot accept; only an IdP that cannot be reached is passing.
	var unavailable *UnavailableError
	switch err := p.complete(ctx, tok.AccessToken, claims, &res.Identity); {
	case errors.As(err, &unavailable):
		return nil, fmt.Errorf("providers: %s: refresh: %w", p.cfg.ID, err)
	case err != nil:
		return nil, refused(err)
	}
	res.Expiry = expiryOf(p.accessTokenExpiry(tok), idExpiry)
	return res, nil
}

// refreshGrant calls the token endpoint with grant_type=refresh_token,
// authenticating as the configuration says (like rp.RefreshTokens, without
// its ID token check). No scope is sent: the grant keeps the scopes of the
// original one (RFC 6749 §6), and asking for one the IdP did not grant
// would fail.
func (p *oidcProvider) refreshGrant(ctx context.Context, c *oidcClient, refreshToken string) (*oauth2.Token, error) {
	oc := c.rp.OAuthConfig()
	req := rp.RefreshTokenRequest{RefreshToken: refreshToken, GrantType: oidc.GrantTypeRefreshToken}
	var auth any // nil, or an httphelper.RequestAuthorization
	switch {
	case oc.Endpoint.AuthStyle == oauth2.AuthStyleInHeader:
		auth = httphelper.AuthorizeBasic(oc.ClientID, oc.ClientSecret)
	case c.rp.Signer() != nil:
		assertion, err := client.SignedJWTProfileAssertion(p.cfg.ClientID, []string{oc.Endpoint.TokenURL}, 2*time.Minute, c.rp.Signer())
		if err != nil {
			return nil, fmt.Errorf("providers: %s: client assertion: %w", p.cfg.ID, err)
		}
		req.ClientAssertion, req.ClientAssertionType = assertion, oidc.ClientAssertionTypeJWTAssertion
	default: // client_secret_post, or none (a public client: client_id alone)
		req.ClientID, req.ClientSecret = oc.ClientID, oc.ClientSecret
	}
	tok, err := client.CallTokenEndpointWithAuthFn(ctx, req, auth, tokenEndpoint{url: oc.Endpoint.TokenURL, hc: c.rp.HttpClient()})
	if err == nil {
		return tok, nil
	}
	var oe *oidc.Error
	if errors.As(err, &oe) {
		te := &TokenError{Code: string(oe.ErrorType), Description: oe.Description}
		if te.Code == string(oidc.ServerError) || te.Code == "temporarily_unavailable" {
			return nil, fmt.Errorf("providers: %s: refresh: %w", p.cfg.ID, te)
		}
		return nil, fmt.Errorf("providers: %s: refresh: %w: %w", p.cfg.ID, ErrRefreshRefused, te)
	}
	return nil, fmt.Errorf("providers: %s: refresh: %w", p.cfg.ID, err)
}

// accessTokenExpiry is when the refreshed access token expires, by the
// provider's clock; zero when the IdP did not say (zitadel would make that
// "now").
func (p *oidcProvider) accessTokenExpiry(tok *oauth2.Token) time.Time {
	var secs float64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		secs = v
	case json.Number:
		secs, _ = v.Float64()
	}
	if secs <= 0 {
		return time.Time{}
	}
	return p.opts.Now().Add(time.Duration(secs * float64(time.Second)))
}

// expiryOf is when a login's tokens need renewing: when the access token
// expires, or, when that is unknown, when the ID token does.
func expiryOf(accessToken, idToken time.Time) time.Time {
	if accessToken.IsZero() {
		return idToken
	}
	return accessToken
}

// tokenEndpoint is the client.TokenEndpointCaller of a refresh.
type tokenEndpoint struct {
	url string
	hc  *http.Client
}

func (t tokenEndpoint) TokenEndpoint() string    { return t.url }
func (t tokenEndpoint) HttpClient() *http.Client { return t.hc }

// unverifiedClaims decodes a JWT's payload without checking it, for a token
// that was verified when the broker received it and kept server-side since.
// It returns nil for anything that is not a JWT.
func unverifiedClaims(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	return claims
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}
