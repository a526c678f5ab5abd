package broker

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Ending sessions, in one place: every session that ends is marked revoked
// first or at once (revoke), so that no request that still holds it can
// write it back (revocationGuard), and its WebSockets close (tunnels.go).
// The request's own session ends through endOwnSession (sign-out, a
// refused refresh); another one through endStoredSession (back-channel
// logout).

// endSession ends the request's own session because its login cannot go on:
// deleted, its cookie cleared when the response goes out, and marked
// revoked so that a concurrent request cannot write it back.
func (s *Server) endSession(ctx context.Context, id providers.Identity, reason auditReason, err error) {
	if derr := s.endOwnSession(ctx); derr != nil {
		s.logStoreError(ctx, "session could not be ended", derr)
	}
	s.audit(ctx, auditEntry{event: evSessionEnded, provider: id.Provider, sub: id.Subject, reason: reason, err: err})
}

// endOwnSession ends the request's own session: deleted (its cookie
// cleared when the response goes out; the request may put new values in
// the fresh session scs starts, as sign-out does) and marked revoked, also
// when the deletion failed, so that a request of this browser still in
// flight cannot bring it back. A failure to mark it is logged (revoke); the
// error returned is the deletion's.
func (s *Server) endOwnSession(ctx context.Context) error {
	token := s.sessions.Token(ctx)
	err := s.sessions.Destroy(ctx)
	_ = s.revoke(ctx, token) // logged
	return err
}

// endStoredSession ends the session of token, which is not the request's
// own: marked revoked first (so that no request still holding it can write
// it back), then deleted. It reports whether the session still existed.
func (s *Server) endStoredSession(ctx context.Context, token string) (bool, error) {
	if err := s.revoke(ctx, token); err != nil {
		return false, err
	}
	// HashTokenInStore is off: the store's key is the token itself.
	st := s.sessions.Backing()
	_, found, err := st.FindCtx(ctx, token)
	if err != nil || !found {
		return false, err
	}
	return true, st.DeleteCtx(ctx, token)
}

// revoke marks a session token ended, for as long as a session can live.
func (s *Server) revoke(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	s.endTunnels(token) // tunnels.go: its WebSockets close now
	lifetime := s.sessions.MaxLifetime()
	err := s.store.IndexAdd(ctx, []string{revokedKey(token)}, token, s.now().Add(lifetime))
	if err != nil {
		s.log.ErrorContext(ctx, "session could not be marked ended", "error", err)
	}
	return err
}

// revoked reports whether token's session was ended (revoke).
func (s *Server) revoked(ctx context.Context, token string) (bool, error) {
	toks, err := s.store.IndexTokens(ctx, revokedKey(token))
	return len(toks) > 0, err
}

func revokedKey(token string) string { return "revoked:" + token }

// revocationGuard is the session store as scs sees it: the configured store,
// except that a session marked revoked is never written again. scs commits
// a request's whole session when the request modified it, so without this
// an in-flight request that loaded a session before it was ended (by
// another replica, say) would bring it back. The check runs at commit, not
// at load: a session nobody writes stays deleted, and reads cost nothing
// extra. (A commit that checked just before the mark and writes just after
// the deletion still wins; that window is one store round trip.)
type revocationGuard struct {
	scs.CtxStore // the configured store
	s            *Server
}

var _ scs.CtxStore = (*revocationGuard)(nil)

// CommitCtx writes the session unless it was revoked; a revoked one is
// silently dropped (the request that held it is answered as it was going
// to be; the next one finds no session).
func (g *revocationGuard) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	revoked, err := g.s.revoked(ctx, token)
	if err != nil {
		return err
	}
	if revoked {
		g.s.log.InfoContext(ctx, "ended session not written back", "reason", "revoked while a request held it")
		return nil
	}
	return g.CtxStore.CommitCtx(ctx, token, b, expiry)
}

func (g *revocationGuard) Commit(token string, b []byte, expiry time.Time) error {
	return g.CommitCtx(context.Background(), token, b, expiry)
}
