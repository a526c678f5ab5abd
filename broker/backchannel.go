package broker

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/backchannel"
	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/formbody"
	"github.com/oidc-broker/oidc-broker/providers"
)

// OpenID Connect Back-Channel Logout 1.0 (package backchannel): when a
// user's session ends at the IdP, the IdP posts a logout token to
// /oauth2/backchannel_logout/{provider}, and every broker session of that
// IdP session (sid) or user (sub) ends, on every replica that shares the
// store. The store's index (backend.IndexTokens) finds them; finishLogin
// fills it.
//
// An ended session must stay ended: a request that loaded it before it was
// deleted would otherwise write it back when it commits (scs saves the whole
// session). So every session that ends (here, by sign-out, or by a refused
// refresh) is marked revoked for as long as a session can live, and the
// session store refuses to write a revoked session (session.Manager.End,
// EndStored).

// initLogout sets up what logouts need: the limiter of the back-channel
// endpoint, and the guard that keeps ended sessions ended (their tunnels
// close: tunnels.go).
func (s *Server) initLogout() {
	s.logouts = backchannel.NewLimiter(s.opts.Now)
	s.sessions.GuardEnds(session.Ending{Backend: s.store, Now: s.now, Ended: s.endTunnels, Log: s.log})
}

// handleBackchannelLogout reads a logout token and ends the sessions it
// names (backchannel.Logout.End verifies it and ends them). It answers
// 200, or 400 with {"error":"invalid_request"} and a log line that names
// the failed check (never the token), 429 while a client keeps sending bad
// tokens, 503 when the IdP's keys or the store cannot be reached.
// Responses are never cached (§2.8).
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
		writeJSONError(w, status, code)
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
	form, err := formbody.Read(w, r, backchannel.MaxRequest)
	if err != nil {
		refuse(http.StatusBadRequest, audit.Because(audit.BadRequest, "unreadable request body"), err)
		return
	}
	raw := form.Get("logout_token")
	if raw == "" {
		refuse(http.StatusBadRequest, audit.Because(audit.BadRequest, "no logout_token"), nil)
		return
	}
	logout := backchannel.Logout{Store: s.store, Sessions: s.sessions, SIDKey: sidKey, SubKey: subKey}
	ended, err := logout.End(ctx, provider, v, raw)
	var refusal *backchannel.Refusal
	if errors.As(err, &refusal) {
		refuse(refusal.Status, refusal.Reason, refusal.Err)
		return
	}
	s.audit(ctx, auditEntry{event: audit.Backchannel, provider: provider, sub: ended.Subject, before: []any{"by", ended.By}, after: []any{"sessions", ended.Sessions}})
	w.WriteHeader(http.StatusOK)
}
