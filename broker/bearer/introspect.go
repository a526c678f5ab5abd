package bearer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// introspect asks the providers that enable introspection about an opaque
// token (RFC 7662), in configuration order, at most maxIntrospections at a
// time; the first that finds it active decides. Its answer is kept for the
// provider's introspection_cache, never past the token's exp.
func (v *Verifier) introspect(ctx context.Context, token string, now time.Time) (providers.Identity, time.Time, error) {
	var unavailable error
	asked := false
	for _, is := range v.issuers {
		if !is.cfg.Introspection {
			continue
		}
		asked = true
		select {
		case v.sem <- struct{}{}:
		case <-ctx.Done():
			return providers.Identity{}, time.Time{}, ctx.Err()
		}
		res, err := is.p.Introspect(ctx, token)
		<-v.sem
		if err != nil {
			if unavailable == nil {
				unavailable = err
			}
			continue
		}
		if !res.Active {
			continue
		}
		var claims map[string]any
		b, err := json.Marshal(res)
		if err != nil || json.Unmarshal(b, &claims) != nil {
			return providers.Identity{}, time.Time{}, invalid(is.id, "introspection answer unreadable")
		}
		return v.checkIntrospected(is, res.Audience, claims, now)
	}
	switch {
	case unavailable != nil:
		return providers.Identity{}, time.Time{}, fmt.Errorf("bearer: introspection failed: %w", unavailable)
	case !asked:
		return providers.Identity{}, time.Time{}, invalid("", "not a JWT, and no provider introspects opaque tokens")
	}
	return providers.Identity{}, time.Time{}, invalid("", "not active at any provider that introspects tokens")
}

// checkIntrospected checks an active introspection answer: exp and nbf
// when present, aud when present, the required scopes.
func (v *Verifier) checkIntrospected(is issuer, aud []string, claims map[string]any, now time.Time) (providers.Identity, time.Time, error) {
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
	if len(aud) > 0 && !slices.ContainsFunc(is.cfg.Audiences, func(a string) bool { return slices.Contains(aud, a) }) {
		return providers.Identity{}, time.Time{}, invalid(is.id, "aud %v is none of %v", truncateAll(aud), is.cfg.Audiences)
	}
	if missing := missingScopes(is.cfg.Scopes, claims["scope"], claims["scp"]); len(missing) > 0 {
		return providers.Identity{}, time.Time{}, &Error{Code: InsufficientScope, Provider: is.id, Reason: fmt.Sprintf("scopes %v not granted", missing)}
	}
	id := is.p.IdentityOf(claims)
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
