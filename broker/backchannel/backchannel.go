// Package backchannel is the core of OpenID Connect Back-Channel Logout
// 1.0: when a user's session ends at the IdP, the IdP posts a logout token,
// and every broker session of that IdP session (sid) or user (sub) ends, on
// every replica that shares the store. Logout.End verifies the token
// through its provider (providers.LogoutTokenVerifier does every check of
// §2.6 but replay), spends its jti once in the store (replay), finds the
// sessions it names through the store's index and ends each through the
// session package's end path (session.Manager.EndStored, which marks it
// revoked). The HTTP endpoint, its audit lines and its limiter of refused
// tokens (NewLimiter) are the broker's.
package backchannel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Bounds of the back-channel endpoint.
const (
	// MaxRequest caps the request body; a logout token is about 1 KB.
	MaxRequest = 64 << 10
	// Failures refused logout tokens per provider and client address (an
	// IPv6 /64) within FailureSpan; then 429 until the bucket refills.
	// Valid tokens are never counted, so an attacker's garbage cannot stop
	// the IdP's logouts from another address.
	Failures    = 20
	FailureSpan = time.Minute
)

// NewLimiter is the limiter of refused logout tokens (Failures within
// FailureSpan), on the clock now (time.Now when nil).
func NewLimiter(now func() time.Time) *ratelimit.Failures {
	return ratelimit.NewFailures(Failures, FailureSpan, now)
}

// Logout ends the sessions that logout tokens name.
type Logout struct {
	Store    store.Backend    // single-use marks and the index of sessions by sid and sub
	Sessions *session.Manager // the end path
	// SIDKey and SubKey are the index's keys of a provider's sid and sub,
	// as the login that filled the index wrote them.
	SIDKey, SubKey func(provider, v string) string
}

// Ended is what a logout ended: Sessions sessions of Subject, found by
// "sid" or by "sub".
type Ended struct {
	Sessions int
	By       string
	Subject  string
}

// Refusal is a logout token refused: Status is 400 (bad, or replayed),
// or 503 when the IdP's keys or the store cannot be reached (§2.8).
type Refusal struct {
	Status int
	Reason audit.Reason // the failed check, never the token
	Err    error        // the cause, for the log; nil when Reason says it all
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("backchannel: %s: %v", r.Reason.Text(), r.Err)
	}
	return "backchannel: " + r.Reason.Text()
}

func (r *Refusal) Unwrap() error { return r.Err }

// End verifies the logout token raw of provider with v and ends the
// sessions it names; a refused token is a *Refusal.
func (l Logout) End(ctx context.Context, provider string, v providers.LogoutTokenVerifier, raw string) (Ended, error) {
	claims, err := v.VerifyLogoutToken(ctx, raw)
	var unavailable *providers.UnavailableError
	switch {
	case errors.As(err, &unavailable):
		return Ended{}, &Refusal{http.StatusServiceUnavailable, audit.Because(audit.IdPUnavailable, "provider unavailable"), err}
	case err != nil:
		return Ended{}, &Refusal{http.StatusBadRequest, audit.Because(audit.Verification, "verification failed"), err}
	}
	// Replay (§2.6 step 7), before anything ends: a replayed sub-only token
	// would otherwise end the sessions the user started since.
	fresh, err := l.Store.Once(ctx, "logout-jti:"+provider+":"+claims.JTI, providers.LogoutTokenMaxAge+2*providers.LogoutTokenLeeway)
	switch {
	case err != nil:
		return Ended{}, &Refusal{http.StatusServiceUnavailable, audit.Because(audit.StoreUnavailable, "session store unavailable"), err}
	case !fresh:
		return Ended{}, &Refusal{http.StatusBadRequest, audit.Because(audit.Replayed, "jti replayed"), nil}
	}
	n, err := l.endSessionsOf(ctx, provider, claims)
	if err != nil {
		return Ended{}, &Refusal{http.StatusServiceUnavailable, audit.Because(audit.StoreUnavailable, "session store unavailable"), err}
	}
	by := "sid"
	if claims.SID == "" {
		by = "sub"
	}
	return Ended{Sessions: n, By: by, Subject: claims.Subject}, nil
}

// endSessionsOf ends the sessions a logout token names and returns how
// many there were: those of its sid when it has one, else all of its sub's.
// A token with both also ends the sub's sessions that recorded no sid (the
// IdP put none in their ID tokens, so the sid cannot find them): ending one
// session too many is safer than keeping one that should have ended.
func (l Logout) endSessionsOf(ctx context.Context, provider string, c providers.LogoutClaims) (int, error) {
	var tokens, emptied []string
	if c.SID != "" {
		key := l.SIDKey(provider, c.SID)
		t, err := l.Store.IndexTokens(ctx, key)
		if err != nil {
			return 0, err
		}
		tokens, emptied = t, append(emptied, key)
	}
	if c.Subject != "" {
		key := l.SubKey(provider, c.Subject)
		t, err := l.Store.IndexTokens(ctx, key)
		if err != nil {
			return 0, err
		}
		if c.SID == "" {
			tokens, emptied = t, append(emptied, key)
		} else {
			for _, tok := range t {
				if slices.Contains(tokens, tok) {
					continue
				}
				if sidless, err := l.sessionWithoutSID(tok); err != nil {
					return 0, err
				} else if sidless {
					tokens = append(tokens, tok)
				}
			}
		}
	}
	n := 0
	for _, tok := range tokens {
		ended, err := l.Sessions.EndStored(ctx, tok)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	for _, key := range emptied {
		if err := l.Store.IndexRemove(ctx, key); err != nil {
			return n, err
		}
	}
	return n, nil
}

// sessionWithoutSID reports whether the stored session of token is signed
// in with tokens that carry no sid.
func (l Logout) sessionWithoutSID(token string) (bool, error) {
	_, t, ok, err := l.Sessions.Stored(token)
	if err != nil || !ok {
		return false, err // !ok: gone already
	}
	return t.SID == "", nil
}
