package broker

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
	"github.com/oidc-broker/oidc-broker/formbody"
	"github.com/oidc-broker/oidc-broker/providers"
)

// OpenID Connect Back-Channel Logout 1.0: when a user's session ends at the
// IdP, the IdP posts a logout token to
// /oauth2/backchannel_logout/{provider}, and every broker session of that
// IdP session (sid) or user (sub) ends, on every replica that shares the
// store. The store's index (backend.indexTokens) finds them; finishLogin
// fills it.
//
// An ended session must stay ended: a request that loaded it before it was
// deleted would otherwise write it back when it commits (scs saves the whole
// session). So every session that ends (here, by sign-out, or by a refused
// refresh) is marked revoked for as long as a session can live, and the
// session store refuses to write a revoked session (session.Manager.End,
// EndStored).

// Bounds of the back-channel endpoint.
const (
	// maxLogoutRequest caps the request body; a logout token is about 1 KB.
	maxLogoutRequest = 64 << 10
	// logoutFailures refused logout tokens per provider and client address
	// (an IPv6 /64) within logoutFailureSpan; then 429 until the bucket
	// refills. Valid tokens are never counted, so an attacker's garbage
	// cannot stop the IdP's logouts from another address.
	logoutFailures    = 20
	logoutFailureSpan = time.Minute
)

// initLogout sets up what logouts need: the limiter of the back-channel
// endpoint, and the guard that keeps ended sessions ended (their tunnels
// close: tunnels.go).
func (s *Server) initLogout() {
	s.logouts = ratelimit.NewFailures(logoutFailures, logoutFailureSpan, s.opts.Now)
	s.sessions.GuardEnds(session.Ending{Backend: s.store, Now: s.now, Ended: s.endTunnels, Log: s.log})
}

// handleBackchannelLogout verifies a logout token (providers.
// LogoutTokenVerifier does every check of §2.6 except replay, done here
// with the store's single-use marks) and ends the sessions it names. It
// answers 200, or 400 with {"error":"invalid_request"} and a log line that
// names the failed check (never the token), 429 while a client keeps
// sending bad tokens, 503 when the IdP's keys or the store cannot be
// reached. Responses are never cached (§2.8).
func (s *Server) handleBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	provider := r.PathValue("provider")
	limitKey := provider + "\x00" + ratelimit.AddrKey(clientAddr(r))
	refuse := func(status int, reason audit.Reason, err error) {
		s.audit(ctx, auditEntry{event: audit.BackchannelRefused, provider: provider, reason: reason, err: err})
		code := "invalid_request"
		switch status {
		case http.StatusBadRequest:
			s.logouts.Failed(limitKey)
		case http.StatusServiceUnavailable:
			code = "temporarily_unavailable"
		}
		jsonError(w, status, code)
	}
	if wait := s.logouts.Wait(limitKey); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(retryAfterSeconds(wait)))
		refuse(http.StatusTooManyRequests, audit.Because(audit.RateLimited, "too many refused logout tokens"), nil)
		return
	}
	p, _ := s.registry.Get(provider)
	v, ok := p.(providers.LogoutTokenVerifier)
	if !ok {
		refuse(http.StatusBadRequest, audit.Because(audit.UnknownProvider, "no such provider, or it has no back-channel logout"), nil)
		return
	}
	// §2.8: any failure is a 400, whatever formbody.Status would say.
	form, err := formbody.Read(w, r, maxLogoutRequest)
	if err != nil {
		refuse(http.StatusBadRequest, audit.Because(audit.BadRequest, "unreadable request body"), err)
		return
	}
	raw := form.Get("logout_token")
	if raw == "" {
		refuse(http.StatusBadRequest, audit.Because(audit.BadRequest, "no logout_token"), nil)
		return
	}
	claims, err := v.VerifyLogoutToken(ctx, raw)
	var unavailable *providers.UnavailableError
	switch {
	case errors.As(err, &unavailable):
		refuse(http.StatusServiceUnavailable, audit.Because(audit.IdPUnavailable, "provider unavailable"), err)
		return
	case err != nil:
		refuse(http.StatusBadRequest, audit.Because(audit.Verification, "verification failed"), err)
		return
	}
	// Replay (§2.6 step 7), before anything ends: a replayed sub-only token
	// would otherwise end the sessions the user started since.
	fresh, err := s.store.Once(ctx, "logout-jti:"+provider+":"+claims.JTI, providers.LogoutTokenMaxAge+2*providers.LogoutTokenLeeway)
	switch {
	case err != nil:
		refuse(http.StatusServiceUnavailable, audit.Because(audit.StoreUnavailable, "session store unavailable"), err)
		return
	case !fresh:
		refuse(http.StatusBadRequest, audit.Because(audit.Replayed, "jti replayed"), nil)
		return
	}
	n, err := s.endSessionsOf(ctx, provider, claims)
	if err != nil {
		refuse(http.StatusServiceUnavailable, audit.Because(audit.StoreUnavailable, "session store unavailable"), err)
		return
	}
	by := "sid"
	if claims.SID == "" {
		by = "sub"
	}
	s.audit(ctx, auditEntry{event: audit.Backchannel, provider: provider, sub: claims.Subject, before: []any{"by", by}, after: []any{"sessions", n}})
	w.WriteHeader(http.StatusOK)
}

// endSessionsOf ends the sessions a logout token names and returns how
// many there were: those of its sid when it has one, else all of its sub's.
// A token with both also ends the sub's sessions that recorded no sid (the
// IdP put none in their ID tokens, so the sid cannot find them): ending one
// session too many is safer than keeping one that should have ended.
func (s *Server) endSessionsOf(ctx context.Context, provider string, c providers.LogoutClaims) (int, error) {
	var tokens, emptied []string
	if c.SID != "" {
		key := sidKey(provider, c.SID)
		t, err := s.store.IndexTokens(ctx, key)
		if err != nil {
			return 0, err
		}
		tokens, emptied = t, append(emptied, key)
	}
	if c.Subject != "" {
		key := subKey(provider, c.Subject)
		t, err := s.store.IndexTokens(ctx, key)
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
				if sidless, err := s.sessionWithoutSID(tok); err != nil {
					return 0, err
				} else if sidless {
					tokens = append(tokens, tok)
				}
			}
		}
	}
	n := 0
	for _, tok := range tokens {
		ended, err := s.sessions.EndStored(ctx, tok)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	for _, key := range emptied {
		if err := s.store.IndexRemove(ctx, key); err != nil {
			return n, err
		}
	}
	return n, nil
}

// sessionWithoutSID reports whether the stored session of token is signed
// in with tokens that carry no sid.
func (s *Server) sessionWithoutSID(token string) (bool, error) {
	_, t, ok, err := s.sessions.Stored(token)
	if err != nil || !ok {
		return false, err // !ok: gone already
	}
	return t.SID == "", nil
}

// jsonError answers an API client with {"error": code}.
func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`+"\n", code)
}
