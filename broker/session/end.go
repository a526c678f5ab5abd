package session

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// Ending sessions, in one place: every session that ends is marked revoked
// first or at once (revoke), so that no request that still holds it can
// write it back (revocationGuard), and the broker is told (Ending.Ended:
// its WebSockets close). The request's own session ends through End
// (sign-out, a refused refresh); another one through EndStored
// (back-channel logout).

// Ending is what ending sessions needs besides the session data.
type Ending struct {
	// Backend keeps the revocation marks and the refresh locks.
	Backend store.Backend
	Now     func() time.Time
	// Ended, when set, is told of every session that ends on this replica,
	// before it is marked (the broker closes its tunnels).
	Ended func(token string)
	Log   *slog.Logger
}

// RefreshLockTTL bounds one refresh of a session's tokens on any replica
// (LockRefresh). After a passing failure (the IdP unreachable) the lock is
// kept until it expires, so that the next attempt waits this long.
const RefreshLockTTL = 30 * time.Second

// GuardEnds makes ended sessions stay ended: the store as scs sees it gets
// the revocation guard, outermost, and End and EndStored mark what they
// end in e.Backend. Call it once, before the sessions serve requests.
func (s *Manager) GuardEnds(e Ending) {
	s.ending = e
	s.WrapStore(func(st scs.CtxStore) scs.CtxStore { return &revocationGuard{CtxStore: st, m: s} })
}

// End ends the request's own session: marked revoked, then deleted (its
// cookie cleared when the response goes out; the request may put new
// values in the fresh session scs starts, as sign-out does), so that a
// request of this browser still in flight cannot bring it back, not even
// one that commits between the deletion and the mark (TestEndMarksFirst).
// The deletion is tried also when the mark failed, which is logged; the
// error returned is the deletion's.
//
// The mark lasts until the session's own deadline (and revocationSkew):
// a request that writes it back later writes it with that expiry, already
// past, which deletes it.
func (s *Manager) End(ctx context.Context) error {
	token, deadline := s.Token(ctx), s.sm.Deadline(ctx)
	_ = s.revoke(ctx, token, deadline.Add(revocationSkew)) // logged
	return s.sm.Destroy(ctx)
}

// revocationSkew outlasts the clocks' difference between replicas (a
// mark's expiry is one replica's clock, a write-back's another's).
const revocationSkew = time.Minute

// EndStored ends the session of token, which is not the request's own:
// marked revoked first (so that no request still holding it can write it
// back), then deleted. It reports whether the session still existed.
func (s *Manager) EndStored(ctx context.Context, token string) (bool, error) {
	// Its deadline is in the session, unread: marked for as long as a
	// session can live.
	if err := s.revoke(ctx, token, s.ending.Now().Add(s.MaxLifetime())); err != nil {
		return false, err
	}
	// HashTokenInStore is off: the store's key is the token itself.
	st := s.Backing()
	_, found, err := st.FindCtx(ctx, token)
	if err != nil || !found {
		return false, err
	}
	return true, st.DeleteCtx(ctx, token)
}

// LockRefresh takes the lock of the request's session under which one
// request, on any replica, refreshes its tokens. ok is false when another
// request holds it; release gives it back before RefreshLockTTL.
func (s *Manager) LockRefresh(ctx context.Context) (release func(), ok bool, err error) {
	return s.ending.Backend.Lock(ctx, "refresh:"+s.Token(ctx), RefreshLockTTL)
}

// revoke marks a session token ended, until until.
func (s *Manager) revoke(ctx context.Context, token string, until time.Time) error {
	if token == "" {
		return nil
	}
	if s.ending.Ended != nil {
		s.ending.Ended(token)
	}
	err := s.ending.Backend.IndexAdd(ctx, []string{revokedKey(token)}, token, until)
	if err != nil {
		s.ending.Log.ErrorContext(ctx, "session could not be marked ended", "error", err)
	}
	return err
}

// revoked reports whether token's session was ended (revoke).
func (s *Manager) revoked(ctx context.Context, token string) (bool, error) {
	toks, err := s.ending.Backend.IndexTokens(ctx, revokedKey(token))
	return len(toks) > 0, err
}

func revokedKey(token string) string { return "revoked:" + token }

// revocationGuard is the session store as scs sees it: the configured store,
// except that a session marked revoked is never written again. scs commits
// a request's whole session when the request modified it, so without this
// an in-flight request that loaded a session before it was ended (by
// another replica, say) would bring it back. The check runs at commit, not
// at load: a session nobody writes stays deleted, and reads cost nothing
// extra. A store that is a store.GuardedCommitter (Redis) checks and
// writes in one step; with another (memory), a commit that checked just
// before the mark and writes just after the deletion still wins, a window
// of two map accesses.
type revocationGuard struct {
	scs.CtxStore // the configured store
	m            *Manager
}

var _ scs.CtxStore = (*revocationGuard)(nil)

// Unwrap is the store the guard keeps ended sessions out of.
func (g *revocationGuard) Unwrap() scs.Store { return g.CtxStore }

// CommitCtx writes the session unless it was revoked; a revoked one is
// silently dropped (the request that held it is answered as it was going
// to be; the next one finds no session).
//
// A session SignIn just made (IndexOnCommit) is indexed in the same step,
// before it is written.
func (g *revocationGuard) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	var add store.Addition
	if a, ok := ctx.Value(indexOnCommitKey{}).(*indexOnCommit); ok && a.token == token {
		add = a.add
	}
	// A store that checks and writes in one step (Redis: one round trip,
	// no gap in which a revocation could land).
	if gc, ok := g.CtxStore.(store.GuardedCommitter); ok {
		written, err := gc.CommitUnlessIndexedCtx(ctx, token, b, expiry, revokedKey(token), add)
		if !errors.Is(err, errors.ErrUnsupported) {
			if err == nil && !written {
				g.m.ending.Log.InfoContext(ctx, "ended session not written back", "reason", "revoked while a request held it")
			}
			return err
		}
	}
	if add.Once != "" {
		fresh, err := g.m.ending.Backend.Once(ctx, add.Once, add.OnceTTL)
		if err != nil {
			return err
		}
		if !fresh {
			return store.ErrOnceUsed
		}
	}
	if len(add.Keys) > 0 {
		// Indexed first: a back-channel logout that finds the token
		// between the two marks it revoked, and the check below sees it.
		if err := g.m.ending.Backend.IndexAdd(ctx, add.Keys, token, add.Until); err != nil {
			return err
		}
	}
	revoked, err := g.m.revoked(ctx, token)
	if err != nil {
		return err
	}
	if revoked {
		g.m.ending.Log.InfoContext(ctx, "ended session not written back", "reason", "revoked while a request held it")
		return nil
	}
	return g.CtxStore.CommitCtx(ctx, token, b, expiry)
}

// IndexOnCommit returns ctx for the commit of the session SignIn just made
// (its token new, never written): the commit lists the token under keys
// (Backend.IndexAdd) until the session's deadline, so that a back-channel
// logout finds it, before it writes the session and in the same step when
// the store has one (Redis: the revocation check, the index entries and
// the write in one script, one round trip), and only when it writes; a
// session that cannot be indexed is not written. The write publishes no
// invalidation (store.Addition.Fresh): no replica can have cached a token
// never written. When once is set, the same step marks it used for
// onceTTL (Backend.Once: the login's state), and the commit writes
// nothing and fails with store.ErrOnceUsed when it was used already (a
// replayed login). It needs GuardEnds: ok is false without, and ctx is
// returned as it is (nothing indexed, once not marked).
func (s *Manager) IndexOnCommit(ctx context.Context, keys []string, once string, onceTTL time.Duration) (_ context.Context, ok bool) {
	if s.ending.Backend == nil {
		return ctx, false
	}
	return context.WithValue(ctx, indexOnCommitKey{}, &indexOnCommit{token: s.Token(ctx),
		add: store.Addition{Keys: keys, Until: s.Deadline(ctx), Fresh: true, Once: once, OnceTTL: onceTTL}}), true
}

// indexOnCommit is what IndexOnCommit leaves for the commit of token.
type indexOnCommit struct {
	token string
	add   store.Addition
}

type indexOnCommitKey struct{}

func (g *revocationGuard) Commit(token string, b []byte, expiry time.Time) error {
	return g.CommitCtx(context.Background(), token, b, expiry)
}
