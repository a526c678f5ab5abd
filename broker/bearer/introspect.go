package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// introspect asks the provider that enables introspection about an
// opaque token (RFC 7662), at most maxIntrospections at a time. Only the
// first such provider is ever asked (the broker's configuration check
// allows one): an opaque token names no issuer, and is never sent to
// another organisation's IdP. An answer whose token_type is not an access
// token's (a refresh token) is refused. An accepted answer is kept for the
// provider's introspection_cache, never past the token's exp.
// errIntrospectionBusy: maxIntrospections calls are already in flight.
var errIntrospectionBusy = errors.New("bearer: introspection busy: too many calls in flight")

func (v *Verifier) introspect(ctx context.Context, token string, now time.Time) (providers.Identity, time.Time, error) {
	i := slices.IndexFunc(v.issuers, func(is issuer) bool { return is.cfg.Introspection })
	if i < 0 {
		return providers.Identity{}, time.Time{}, invalid("", "not a JWT, and no provider introspects opaque tokens")
	}
	is := v.issuers[i]
	// All slots taken: refuse at once (503, Retry-After) rather than let
	// anonymous requests queue, each holding a goroutine and a connection.
	select {
	case v.sem <- struct{}{}:
	default:
		return providers.Identity{}, time.Time{}, errIntrospectionBusy
	}
	res, err := is.p.Introspect(ctx, token)
	<-v.sem
	switch {
	case err != nil:
		return providers.Identity{}, time.Time{}, fmt.Errorf("bearer: introspection failed: %w", err)
	case !res.Active:
		return providers.Identity{}, time.Time{}, invalid(is.id, "not active")
	}
	if tt := res.TokenType; tt != "" && !strings.EqualFold(tt, "access_token") && !strings.EqualFold(tt, "Bearer") {
		return providers.Identity{}, time.Time{}, invalid(is.id, "token_type %q is not an access token's", truncate(tt))
	}
	var claims map[string]any
	b, err := json.Marshal(res)
	if err != nil || json.Unmarshal(b, &claims) != nil {
		return providers.Identity{}, time.Time{}, invalid(is.id, "introspection answer unreadable")
	}
	return v.checkIntrospected(ctx, is, res.Audience, res.ClientID, claims, now)
}

// checkIntrospected checks an active introspection answer: exp and nbf
// when present; aud among the audiences, or else client_id among the
// clients (RFC 7662's aud is optional: without either, the token may be
// any client's of the IdP); the required scopes.
func (v *Verifier) checkIntrospected(ctx context.Context, is issuer, aud []string, clientID string, claims map[string]any, now time.Time) (providers.Identity, time.Time, error) {
	until := now.Add(cmpOr(is.cfg.IntrospectionCache, providers.DefaultIntrospectionCache))
	if exp, ok := claims["exp"].(float64); ok {
		e := time.Unix(int64(exp), 0)
		if !now.Before(e.Add(leeway)) {
			return providers.Identity{}, time.Time{}, invalid(is.id, "expired")
		}
		until = minTime(until, e)
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(leeway).Before(time.Unix(int64(nbf), 0)) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "not valid yet")
	}
	if !slices.ContainsFunc(is.cfg.Audiences, func(a string) bool { return slices.Contains(aud, a) }) &&
		(clientID == "" || !slices.Contains(is.cfg.Clients, clientID)) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "aud %v is none of %v, and client_id %q is not in clients", truncateAll(aud), is.cfg.Audiences, truncate(clientID))
	}
	if missing := missingScopes(is.cfg.Scopes, claims["scope"], claims["scp"]); len(missing) > 0 {
		return providers.Identity{}, time.Time{}, &Error{Code: InsufficientScope, Provider: is.id, Reason: fmt.Sprintf("scopes %v not granted", missing)}
	}
	id, err := identityOf(ctx, is, claims)
	if err != nil {
		return providers.Identity{}, time.Time{}, err
	}
	if id.Subject == "" || id.Provider != is.id {
		return providers.Identity{}, time.Time{}, invalid(is.id, "no sub in the introspection answer")
	}
	return id, until, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
