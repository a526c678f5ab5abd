package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Signing out, as optional capabilities (found by type assertion, like
// PasswordAuthenticator): an EndSessioner can send the user to the IdP to
// end the IdP's session too, and a LogoutTokenVerifier checks the logout
// tokens an IdP posts when a session ends there. docs/logout.md describes
// both from the broker's side.

// EndSessioner is a provider that supports OpenID Connect RP-Initiated
// Logout 1.0: the browser is sent to the IdP's end_session_endpoint and
// comes back to a post_logout_redirect_uri registered there.
type EndSessioner interface {
	// EndSession returns the request the browser must make to end the
	// IdP's session: the end_session_endpoint with id_token_hint,
	// client_id, post_logout_redirect_uri and state (RP-Initiated Logout
	// 1.0 §2). ok is false when the IdP publishes no end_session_endpoint.
	// It fails with an *UnavailableError when the IdP's metadata cannot be
	// obtained.
	EndSession(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (req EndSessionRequest, ok bool, err error)
}

// EndSessionRequest is an RP-Initiated Logout request, as data: the browser
// sends it to the IdP either as a GET of URL() or, when MustPost says the
// URL is too long, as a form POST of Params to Endpoint (§2 lets the RP use
// either, and has the OP accept both).
type EndSessionRequest struct {
	// Endpoint is the end_session_endpoint, an absolute http(s) URL, with
	// the query the IdP published (some put a policy or tenant there).
	Endpoint string
	// Params are the request's parameters, to add to Endpoint's query (GET)
	// or to post as a form (POST).
	Params url.Values
}

// URL is the request as a GET: Endpoint with Params added to its query.
func (r EndSessionRequest) URL() string {
	u, err := url.Parse(r.Endpoint)
	if err != nil { // EndSession made Endpoint from a parsed URL
		return r.Endpoint
	}
	q := u.Query()
	for k, vs := range r.Params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// MustPost reports whether URL() is longer than MaxEndSessionURL, so that
// the request must be a form POST.
func (r EndSessionRequest) MustPost() bool { return len(r.URL()) > MaxEndSessionURL }

// MaxEndSessionURL is the longest end-session URL sent as a GET. An ID
// token with many groups makes a URL of 7 KB and more, while RFC 9110 §4.1
// asks only that 8000 octets work, and every hop must take the whole request
// line (nginx, for one, refuses a line longer than its 8 KB buffer, with a
// 414). 2,000 bytes is the long-established safe length (Internet Explorer
// stopped at 2,083), and a typical ID token (about 1 KB) fits with room to
// spare. Past it a POST costs one page and nothing else, so the limit is the
// safe one, not the largest that often works.
const MaxEndSessionURL = 2000

// LogoutTokenVerifier is a provider that can verify the logout tokens of
// OpenID Connect Back-Channel Logout 1.0.
type LogoutTokenVerifier interface {
	// VerifyLogoutToken checks a logout token completely except for replay
	// (§2.6): the caller must refuse a JTI it has seen within
	// LogoutTokenMaxAge + LogoutTokenLeeway. Refusals wrap one of the
	// ErrLogoutToken* errors, which name the failed check.
	VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error)
}

// LogoutClaims are the verified claims of a logout token. At least one of
// SID and Subject is set.
type LogoutClaims struct {
	// SID is the IdP session that ended ("sid"); empty when the token names
	// only the user.
	SID string
	// Subject is the user ("sub"); empty when the token names only the
	// session.
	Subject  string
	JTI      string
	IssuedAt time.Time
	// Expiry is the token's "exp", zero when it has none.
	Expiry time.Time
}

// BackChannelLogoutEvent is the member of a logout token's "events" claim
// that makes it one (Back-Channel Logout 1.0 §2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Bounds on logout tokens. An IdP sends a logout token the moment a session
// ends, so an old one is a replay: refusing those keeps the set of JTIs to
// remember small.
const (
	// LogoutTokenMaxAge is how old (by "iat") a logout token may be.
	LogoutTokenMaxAge = 5 * time.Minute
	// LogoutTokenLeeway is the clock skew allowed on "iat" and "exp".
	LogoutTokenLeeway = time.Minute
)

// Why a logout token was refused; each names the check that failed.
var (
	ErrLogoutTokenMalformed = errors.New("providers: logout token: not a JWS compact token signed with an accepted algorithm")
	ErrLogoutTokenType      = errors.New("providers: logout token: typ header is neither logout+jwt nor JWT")
	ErrLogoutTokenSignature = errors.New("providers: logout token: signature not made by the provider's keys")
	ErrLogoutTokenIssuer    = errors.New("providers: logout token: iss is not the provider's issuer")
	ErrLogoutTokenAudience  = errors.New("providers: logout token: aud does not contain the client_id")
	ErrLogoutTokenIssuedAt  = errors.New("providers: logout token: iat missing, in the future, or too old")
	ErrLogoutTokenExpired   = errors.New("providers: logout token: exp has passed")
	ErrLogoutTokenEvents    = errors.New("providers: logout token: events claim lacks the back-channel logout event")
	ErrLogoutTokenNonce     = errors.New("providers: logout token: nonce present (an ID token is not a logout token)")
	ErrLogoutTokenSubject   = errors.New("providers: logout token: neither sid nor sub")
	ErrLogoutTokenJTI       = errors.New("providers: logout token: jti missing")
)

var (
	_ EndSessioner        = (*oidcProvider)(nil)
	_ LogoutTokenVerifier = (*oidcProvider)(nil)
)

// EndSession implements EndSessioner. The browser itself must make the
// request (zitadel's rp.EndSession would make it server-side, which ends
// nothing in the browser's IdP session). id_token_hint is always sent: some
// IdPs refuse a request without it (ORY Hydra when state is set, Okta
// always) and keep their session.
func (p *oidcProvider) EndSession(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (EndSessionRequest, bool, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return EndSessionRequest{}, false, err
	}
	endpoint := c.rp.GetEndSessionEndpoint()
	if endpoint == "" {
		return EndSessionRequest{}, false, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return EndSessionRequest{}, false, fmt.Errorf("providers: %s: end_session_endpoint: %w", p.cfg.ID, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return EndSessionRequest{}, false, fmt.Errorf("providers: %s: end_session_endpoint %q is not an absolute http(s) URL", p.cfg.ID, endpoint)
	}
	params := url.Values{"client_id": {p.cfg.ClientID}}
	if idTokenHint != "" {
		params.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		params.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		params.Set("state", state)
	}
	return EndSessionRequest{Endpoint: u.String(), Params: params}, true, nil
}

// VerifyLogoutToken implements LogoutTokenVerifier (Back-Channel Logout 1.0
// §2.6): signed with one of the provider's keys and an accepted asymmetric
// algorithm, iss the issuer exactly, aud containing the client_id, iat
// present and recent, exp (when present) not passed, the back-channel
// logout event, no nonce, sid or sub, and a jti. An explicit typ must be
// logout+jwt (§2.4) or the generic JWT.
func (p *oidcProvider) VerifyLogoutToken(ctx context.Context, raw string) (LogoutClaims, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return LogoutClaims{}, err
	}
	v := c.rp.IDTokenVerifier()
	algs := make([]jose.SignatureAlgorithm, 0, len(v.SupportedSignAlgs))
	for _, a := range v.SupportedSignAlgs {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %v", ErrLogoutTokenMalformed, err)
	}
	if typ, ok := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; ok && !logoutTokenType(typ) {
		return LogoutClaims{}, ErrLogoutTokenType
	}
	payload, err := v.KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %v", ErrLogoutTokenSignature, err)
	}
	var lt oidc.LogoutTokenClaims
	var present map[string]json.RawMessage
	if err := json.Unmarshal(payload, &lt); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %v", ErrLogoutTokenMalformed, err)
	}
	if err := json.Unmarshal(payload, &present); err != nil {
		return LogoutClaims{}, fmt.Errorf("%w: %v", ErrLogoutTokenMalformed, err)
	}
	if err := p.checkLogoutClaims(c, &lt, present); err != nil {
		return LogoutClaims{}, err
	}
	return LogoutClaims{SID: lt.SessionID, Subject: lt.Subject, JTI: lt.JWTID,
		IssuedAt: lt.IssuedAt.AsTime(), Expiry: lt.Expiration.AsTime()}, nil
}

// checkLogoutClaims runs the claim checks of §2.6 on a token whose
// signature is verified.
func (p *oidcProvider) checkLogoutClaims(c *oidcClient, lt *oidc.LogoutTokenClaims, present map[string]json.RawMessage) error {
	now := p.opts.Now()
	iat, exp := lt.IssuedAt.AsTime(), lt.Expiration.AsTime()
	event, _ := lt.Events[BackChannelLogoutEvent].(map[string]any)
	_, hasNonce := present["nonce"]
	switch {
	case !p.issuerOK(c, lt.Issuer):
		return ErrLogoutTokenIssuer
	case !slices.Contains(lt.Audience, p.cfg.ClientID):
		return ErrLogoutTokenAudience
	case iat.IsZero() || iat.After(now.Add(LogoutTokenLeeway)) || now.Sub(iat) > LogoutTokenMaxAge+LogoutTokenLeeway:
		return ErrLogoutTokenIssuedAt
	case !exp.IsZero() && !now.Before(exp.Add(LogoutTokenLeeway)):
		return ErrLogoutTokenExpired
	case event == nil:
		return ErrLogoutTokenEvents
	case hasNonce:
		return ErrLogoutTokenNonce
	case lt.SessionID == "" && lt.Subject == "":
		return ErrLogoutTokenSubject
	case lt.JWTID == "":
		return ErrLogoutTokenJTI
	}
	return nil
}

// logoutTokenType accepts the typ of §2.4 (with or without the media type
// prefix, RFC 7515 §4.1.9) and the generic JWT that many IdPs still send.
func logoutTokenType(typ any) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.TrimPrefix(strings.ToLower(s), "application/")
	return s == "logout+jwt" || s == "jwt"
}
