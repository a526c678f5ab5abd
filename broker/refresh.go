package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Renewing a login (docs/logout.md#refresh). When a session's tokens have
// expired and the IdP issued a refresh token, the request that notices
// redeems it, re-reads the user's claims (groups above all) and goes on
// with the renewed identity; the signed assertion follows, its cache being
// keyed by the identity's claims. One refresh per session runs at a time,
// on every replica together: the store's lock. A refused refresh ends the
// session. session.outlive_tokens says what happens to a session whose
// tokens expired and cannot be renewed: by default it lasts its own
// lifetime; with false it ends.

const (
	// refreshSkew: tokens are renewed this long before they expire.
	refreshSkew = 30 * time.Second
	// refreshTimeout bounds the calls to the IdP; less than the lock
	// (session.RefreshLockTTL).
	refreshTimeout = 20 * time.Second
)

// outliveTokens is session.outlive_tokens, default true.
func (c SessionConfig) outliveTokens() bool { return c.OutliveTokens == nil || *c.OutliveTokens }

// sessionIdentity is the identity of the request's session, renewed first
// when its tokens have expired. ok is false without a session, and when the
// session just ended because its login could not be renewed.
//
// A session whose provider is no longer configured (a reload removed it)
// ends at its next request, on every replica: an operator who removes an
// IdP expects its users out (docs/operations.md#signals).
//
// The common case costs three map reads: the provider is looked up, and
// the tokens are looked at only to compare their expiry with the clock.
func (s *Server) sessionIdentity(r *http.Request) (providers.Identity, bool) {
	ctx := r.Context()
	id, ok := s.sessions.Identity(ctx)
	if !ok {
		return id, false
	}
	if _, known := s.registry.Get(id.Provider); !known {
		s.endSession(ctx, id, audit.Because(audit.ProviderRemoved, "its provider was removed from the configuration"), nil)
		return providers.Identity{}, false
	}
	t, ok := s.sessions.Tokens(ctx)
	if !s.dueForRefresh(t, ok) {
		return id, true
	}
	return s.renew(ctx, id, t)
}

// readOnlyUsable reports whether forward-auth may answer from a session
// read without scs (entry, quickAuth): its provider is still configured
// (else sessionIdentity ends it) and its tokens need no refresh.
func (s *Server) readOnlyUsable(v *session.View) bool {
	if _, known := s.registry.Get(v.ID().Provider); !known {
		return false
	}
	return !s.dueForRefresh(v.Tokens(), true)
}

// dueForRefresh reports whether the tokens of a session (ok: it has some)
// expired, or are about to.
func (s *Server) dueForRefresh(t session.Tokens, ok bool) bool {
	return ok && !t.Expiry.IsZero() && !s.now().Before(t.Expiry.Add(-refreshSkew))
}

// renew refreshes the expired login of the request's session (see
// sessionIdentity). Only the request that takes the session's lock
// refreshes; others go on with the identity they have meanwhile.
func (s *Server) renew(ctx context.Context, id providers.Identity, t session.Tokens) (providers.Identity, bool) {
	p, _ := s.registry.Get(id.Provider)
	ref, canRefresh := p.(providers.Refresher)
	if t.RefreshToken == "" || !canRefresh {
		if s.cfg.Session.outliveTokens() {
			return id, true
		}
		s.endSession(ctx, id, audit.Because(audit.Expired, "tokens expired and cannot be refreshed"), nil)
		return providers.Identity{}, false
	}
	release, ok, err := s.sessions.LockRefresh(ctx)
	if err != nil {
		s.logStoreError(ctx, "refresh: session store unavailable", err)
		return id, true
	}
	if !ok { // being refreshed by another request, here or on another replica
		return id, true
	}
	// This request read the session before it took the lock: another one
	// may have refreshed it since (and rotated the refresh token), or ended
	// it. The store knows.
	cur, curTokens, found, err := s.sessions.Stored(s.sessions.Token(ctx))
	switch {
	case err != nil:
		release()
		s.logStoreError(ctx, "refresh: session store unavailable", err)
		return id, true
	case !found:
		release()
		s.endSession(ctx, id, audit.Because(audit.EndedElsewhere, "ended elsewhere"), nil)
		return providers.Identity{}, false
	case curTokens.RefreshToken != t.RefreshToken || s.now().Before(curTokens.Expiry.Add(-refreshSkew)):
		release()
		s.sessions.SetLogin(ctx, cur, curTokens)
		return cur, true
	}
	// Detached from the request: a client that hangs up must not abandon a
	// refresh whose new (rotated) tokens the IdP has already issued.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	res, err := ref.Refresh(rctx, providers.RefreshRequest{RefreshToken: t.RefreshToken, Subject: id.Subject, IDToken: t.IDToken})
	switch {
	case err == nil:
		renewed := s.saveRenewed(ctx, id, t, res)
		release()
		return renewed, true
	case errors.Is(err, providers.ErrRefreshRefused):
		release()
		s.endSession(ctx, id, audit.Because(audit.RefreshRefused, "refresh refused"), err)
		return providers.Identity{}, false
	case !s.cfg.Session.outliveTokens():
		release()
		s.endSession(ctx, id, audit.Because(audit.RefreshFailed, "refresh failed and session.outlive_tokens is false"), err)
		return providers.Identity{}, false
	}
	// Passing trouble: the lock stays taken until it expires, so no replica
	// tries again before then; meanwhile the session keeps its identity.
	s.log.WarnContext(ctx, "refresh failed, retrying later", "provider", id.Provider, "user", id.User(), "error", err, "retry_in", session.RefreshLockTTL)
	return id, true
}

// endSession ends the request's own session because its login cannot go on
// (session.Manager.End: deleted, its cookie cleared when the response goes
// out, and revoked), and audits it.
func (s *Server) endSession(ctx context.Context, id providers.Identity, reason audit.Reason, err error) {
	if derr := s.sessions.End(ctx); derr != nil {
		s.logStoreError(ctx, "session could not be ended", derr)
	}
	s.audit(ctx, auditEntry{event: audit.SessionEnded, provider: id.Provider, sub: id.Subject, reason: reason, err: err})
}

// saveRenewed puts a refreshed login into the request's session and writes
// it to the store at once, before the lock is released: the next request to
// refresh must find the new (possibly rotated) refresh token, not wait for
// this request's response.
func (s *Server) saveRenewed(ctx context.Context, old providers.Identity, t session.Tokens, res *providers.Result) providers.Identity {
	id := res.Identity
	id.AuthTime = old.AuthTime // the sign-in, not the refresh
	id.AuthnTime, id.ACR = old.AuthnTime, old.ACR
	nt := session.Tokens{IDToken: res.IDToken, RefreshToken: res.RefreshToken, Expiry: res.Expiry, SID: res.SessionID, AccessToken: s.keptAccessToken(res.AccessToken)}
	s.sessions.SetLogin(ctx, id, nt)
	if nt.SID != "" && nt.SID != t.SID {
		if err := s.store.IndexAdd(ctx, []string{sidKey(id.Provider, nt.SID)}, s.sessions.Token(ctx), s.sessions.Deadline(ctx)); err != nil {
			s.logStoreError(ctx, "refresh: the session could not be indexed", err)
		}
	}
	if err := s.sessions.Commit(ctx); err != nil {
		s.logStoreError(ctx, "refresh: the renewed session could not be saved", err)
	}
	s.audit(ctx, auditEntry{event: audit.SessionRefreshed, provider: id.Provider, sub: id.Subject, after: []any{"expires", nt.Expiry}})
	return id
}
