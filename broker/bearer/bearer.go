// Package bearer checks the access tokens API clients present in
// `Authorization: Bearer` (RFC 6750) against the providers that accept
// them (api_tokens), and keeps the identities of tokens that passed,
// bounded in count and bytes, until the token expires. A token that fails
// is never kept: anonymous clients sending random tokens cannot grow it.
//
// A JWT access token is checked with its IdP's keys (only asymmetric
// algorithms), iss, aud (one of the provider's audiences), exp (required),
// nbf, iat, typ (RFC 9068: at+jwt, or JWT, or none; never an ID token) and
// the required scopes. An opaque token is asked about at the IdP's
// introspection endpoint (RFC 7662), by the providers that enable it. The
// identity is the provider's claim mapping of the token's claims; a token
// is accepted as the provider's whose issuer issued it, never another's.
package bearer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Error is a refused token, with its RFC 6750 §3.1 error code.
type Error struct {
	// Code is "invalid_token" (401) or "insufficient_scope" (403).
	Code string
	// Provider is the provider the token was checked as, "" when none.
	Provider string
	// Reason says which check failed, for the log; never the token.
	Reason string
}

func (e *Error) Error() string {
	if e.Provider == "" {
		return "bearer: " + e.Code + ": " + e.Reason
	}
	return fmt.Sprintf("bearer: %s: %s: %s", e.Provider, e.Code, e.Reason)
}

// The RFC 6750 error codes.
const (
	InvalidToken      = "invalid_token"
	InsufficientScope = "insufficient_scope"
)

func invalid(provider, format string, args ...any) *Error {
	return &Error{Code: InvalidToken, Provider: provider, Reason: fmt.Sprintf(format, args...)}
}

// Limits.
const (
	// MaxTokenBytes bounds a token: a longer one is refused unread.
	MaxTokenBytes = 8 << 10
	// leeway is the clock skew tolerated on exp, nbf and iat.
	leeway = 30 * time.Second
	// maxIntrospections bounds the introspection requests in flight.
	maxIntrospections = 8
)

// Options are a Verifier's seams and bounds.
type Options struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// CacheEntries and CacheBytes bound the cache of accepted tokens.
	// Defaults 10,000 and 16 MiB.
	CacheEntries int
	CacheBytes   int
	// CacheMax is the longest a JWT's check is reused (never past its
	// exp). Default 5 minutes.
	CacheMax time.Duration
	// Derive, when set, makes something of each accepted identity once,
	// kept with it in the cache (the broker: its relay headers), so that a
	// cached token costs no more than a session.
	Derive func(providers.Identity) any
}

// Accepted is a token that passed: its identity, and what Options.Derive
// made of it (shared: never modified).
type Accepted struct {
	Identity providers.Identity
	Derived  any
}

// Verifier checks bearer tokens against providers. It is safe for
// concurrent use.
type Verifier struct {
	issuers []issuer
	now     func() time.Time
	max     time.Duration
	derive  func(providers.Identity) any
	cache   *cache
	sem     chan struct{}
}

type issuer struct {
	id  string
	p   providers.TokenIssuer
	cfg providers.APITokensConfig
}

// New returns a Verifier for the providers whose api_tokens are set (in
// this order), or nil when none is.
func New(ps []providers.Provider, opts Options) *Verifier {
	v := &Verifier{now: opts.Now, max: opts.CacheMax, derive: opts.Derive, sem: make(chan struct{}, maxIntrospections)}
	for _, p := range ps {
		ti, ok := p.(providers.TokenIssuer)
		if !ok || len(ti.APITokens().Audiences) == 0 {
			continue
		}
		v.issuers = append(v.issuers, issuer{id: p.ID(), p: ti, cfg: ti.APITokens()})
	}
	if len(v.issuers) == 0 {
		return nil
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.max <= 0 {
		v.max = 5 * time.Minute
	}
	v.cache = newCache(orDefault(opts.CacheEntries, 10_000), orDefault(opts.CacheBytes, 16<<20))
	return v
}

func orDefault(n, d int) int {
	if n > 0 {
		return n
	}
	return d
}

// Verify checks token and returns its identity. It fails with an *Error
// for a token it refuses, and with a *providers.UnavailableError (or
// another error) when the IdP could not be asked.
func (v *Verifier) Verify(ctx context.Context, token string) (Accepted, error) {
	if token == "" || len(token) > MaxTokenBytes {
		return Accepted{}, invalid("", "empty or longer than %d bytes", MaxTokenBytes)
	}
	key := sha256.Sum256([]byte(token))
	now := v.now()
	if a, ok := v.cache.get(key, now); ok {
		return a, nil
	}
	var id providers.Identity
	var until time.Time
	var err error
	if strings.Count(token, ".") == 2 {
		id, until, err = v.verifyJWT(ctx, token, now)
	} else {
		id, until, err = v.introspect(ctx, token, now)
	}
	if err != nil {
		return Accepted{}, err
	}
	a := Accepted{Identity: id}
	if v.derive != nil {
		a.Derived = v.derive(id)
	}
	v.cache.put(key, a, until)
	return a, nil
}

// Len is the number of tokens the cache holds (for tests and metrics).
func (v *Verifier) Len() int { return v.cache.len() }

// algorithms are the signature algorithms any JWT may be parsed with:
// asymmetric only. Each provider then accepts its own.
var algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// accessTokenClaims are the claims every provider checks.
type accessTokenClaims struct {
	jwt.Claims
	Scope any    `json:"scope"`
	Scp   any    `json:"scp"`
	Nonce string `json:"nonce"`
	// Typ is Keycloak's token type claim ("Bearer", "ID", "Refresh").
	Typ    string `json:"typ"`
	AtHash string `json:"at_hash"`
}

// verifyJWT checks a JWT access token as the provider whose issuer issued
// it; with several providers of that issuer (several clients at one IdP),
// the first that accepts it.
func (v *Verifier) verifyJWT(ctx context.Context, token string, now time.Time) (providers.Identity, time.Time, error) {
	jws, err := jose.ParseSignedCompact(token, algorithms)
	if err != nil {
		return providers.Identity{}, time.Time{}, invalid("", "not a JWS signed with an asymmetric algorithm: %v", err)
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); !accessTokenTyp(typ) {
		return providers.Identity{}, time.Time{}, invalid("", "typ %q is not an access token's (RFC 9068: at+jwt)", truncate(typ))
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil || unverified.Issuer == "" {
		return providers.Identity{}, time.Time{}, invalid("", "no iss")
	}
	var refused, unavailable error
	for _, is := range v.issuers {
		keys, err := is.p.TokenKeys(ctx)
		if err != nil {
			unavailable = cmp.Or(unavailable, err)
			continue
		}
		if !keys.IssuerOK(unverified.Issuer) {
			continue
		}
		id, until, err := v.checkJWT(ctx, is, keys, jws, now)
		if err == nil {
			return id, until, nil
		}
		refused = cmp.Or(refused, err)
	}
	switch {
	case refused != nil:
		return providers.Identity{}, time.Time{}, refused
	case unavailable != nil:
		return providers.Identity{}, time.Time{}, unavailable
	}
	return providers.Identity{}, time.Time{}, invalid("", "iss %q is not the issuer of a provider that accepts API tokens", truncate(unverified.Issuer))
}

// checkJWT checks jws as is's token with its keys.
func (v *Verifier) checkJWT(ctx context.Context, is issuer, keys providers.TokenKeys, jws *jose.JSONWebSignature, now time.Time) (providers.Identity, time.Time, error) {
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); is.cfg.RequireATJWT && !atJWT(typ) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "typ %q is not at+jwt (api_tokens.require_at_jwt)", truncate(typ))
	}
	if alg := jws.Signatures[0].Header.Algorithm; !slices.Contains(keys.Algorithms, alg) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "alg %s is not one of %v", alg, keys.Algorithms)
	}
	payload, err := keys.KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return providers.Identity{}, time.Time{}, invalid(is.id, "signature: %v", err)
	}
	var c accessTokenClaims
	var all map[string]any
	if json.Unmarshal(payload, &c) != nil || json.Unmarshal(payload, &all) != nil {
		return providers.Identity{}, time.Time{}, invalid(is.id, "claims are not a JSON object")
	}
	switch {
	case c.Expiry == nil:
		return providers.Identity{}, time.Time{}, invalid(is.id, "no exp")
	case c.Subject == "":
		return providers.Identity{}, time.Time{}, invalid(is.id, "no sub")
	case c.Nonce != "" || c.AtHash != "" || strings.EqualFold(c.Typ, "ID"):
		return providers.Identity{}, time.Time{}, invalid(is.id, "an ID token, not an access token")
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, leeway); err != nil {
		return providers.Identity{}, time.Time{}, invalid(is.id, "%v", err)
	}
	if !slices.ContainsFunc(is.cfg.Audiences, func(a string) bool { return slices.Contains(c.Audience, a) }) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "aud %v is none of %v", truncateAll(c.Audience), is.cfg.Audiences)
	}
	if missing := missingScopes(is.cfg.Scopes, c.Scope, c.Scp); len(missing) > 0 {
		return providers.Identity{}, time.Time{}, &Error{Code: InsufficientScope, Provider: is.id, Reason: fmt.Sprintf("scopes %v not granted", missing)}
	}
	id, err := identityOf(ctx, is, all)
	if err != nil {
		return providers.Identity{}, time.Time{}, err
	}
	if id.Subject == "" || id.Provider != is.id {
		return providers.Identity{}, time.Time{}, invalid(is.id, "no subject after the claim mapping")
	}
	return id, minTime(c.Expiry.Time(), now.Add(v.max)), nil
}

// identityOf is the identity of a verified token's claims, admitted as a
// login would be (the preset's complete step: Entra ID's tenants). A
// refusal is a refused token; an IdP that cannot be asked stays an
// error of its own (503).
func identityOf(ctx context.Context, is issuer, claims map[string]any) (providers.Identity, error) {
	id, err := is.p.IdentityOf(ctx, claims)
	var unavailable *providers.UnavailableError
	switch {
	case err == nil:
		return id, nil
	case errors.As(err, &unavailable), ctx.Err() != nil:
		return providers.Identity{}, err
	}
	return providers.Identity{}, invalid(is.id, "not admitted: %v", err)
}

// accessTokenTyp accepts the JOSE typ of an access token: RFC 9068's
// at+jwt (with or without application/), JWT as most IdPs write it, or
// none.
func accessTokenTyp(typ string) bool {
	t := strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	return typ == "" || t == "at+jwt" || t == "jwt"
}

// atJWT reports whether typ is RFC 9068's at+jwt (with or without
// application/).
func atJWT(typ string) bool {
	return strings.TrimPrefix(strings.ToLower(typ), "application/") == "at+jwt"
}

// missingScopes are the required scopes not among the granted ones: a
// space-separated string (RFC 8693 scope, RFC 9068) or a list (Entra ID's
// and Okta's scp).
func missingScopes(required []string, granted ...any) []string {
	var have []string
	for _, g := range granted {
		switch g := g.(type) {
		case string:
			have = append(have, strings.Fields(g)...)
		case []any:
			for _, s := range g {
				if s, ok := s.(string); ok {
					have = append(have, s)
				}
			}
		}
	}
	var missing []string
	for _, r := range required {
		if !slices.Contains(have, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// truncate cuts a value from a token for a log line.
func truncate(s string) string { return audit.Clip(s, 64) }

func truncateAll(l []string) []string {
	if len(l) > 4 {
		l = l[:4]
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = truncate(s)
	}
	return out
}
