package broker

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The session as a typed record: what a session holds (the identity, the
// login's tokens, the sign-out form's CSRF token, a sign-out at the IdP in
// progress, "keep me signed in") and the operations on it. With session.go
// (load, peek, save, the cookie) this is the only code that touches scs;
// the handlers go through these methods, never through keys and type
// assertions. Values read are shared with other requests (sessioncache.go):
// a change is a new value put, never a value modified in place.

// token is the request's session token ("" before one is made).
func (s *sessions) token(ctx context.Context) string { return s.sm.Token(ctx) }

// deadline is when the request's session expires.
func (s *sessions) deadline(ctx context.Context) time.Time { return s.sm.Deadline(ctx) }

// tokens are the login's tokens; ok is false when the session has none.
func (s *sessions) tokens(ctx context.Context) (t sessionTokens, ok bool) {
	t, ok = s.sm.Get(ctx, keyTokens).(sessionTokens)
	return t, ok
}

// signIn makes the request's session the login of id, with its tokens
// (none when zero): a new session token first (no fixation), then the
// record. remember makes it persistent (session.persistent_max). It fails
// only when the store cannot renew the token.
func (s *sessions) signIn(ctx context.Context, id providers.Identity, t sessionTokens, remember bool) error {
	if err := s.sm.RenewToken(ctx); err != nil {
		return err
	}
	if remember {
		s.remember(ctx)
	}
	s.sm.Remove(ctx, keyPending) // of an earlier version (pending.go)
	s.sm.Put(ctx, keyIdentity, id)
	if t != (sessionTokens{}) {
		s.sm.Put(ctx, keyTokens, t)
	}
	return nil
}

// setLogin replaces the login of the request's session (a refresh).
func (s *sessions) setLogin(ctx context.Context, id providers.Identity, t sessionTokens) {
	s.sm.Put(ctx, keyIdentity, id)
	s.sm.Put(ctx, keyTokens, t)
}

// commit writes the request's session to the store now, before the
// response (save writes the cookie).
func (s *sessions) commit(ctx context.Context) error {
	_, _, err := s.sm.Commit(ctx)
	return err
}

// destroy deletes the request's session; the response clears its cookie.
// Ending a session goes through endOwnSession (sessionend.go), which also
// revokes it.
func (s *sessions) destroy(ctx context.Context) error { return s.sm.Destroy(ctx) }

// stored reads the session of token from the store, not from the request:
// found is false when it no longer exists (or has no identity).
func (s *sessions) stored(token string) (providers.Identity, sessionTokens, bool, error) {
	ctx, err := s.sm.Load(context.Background(), token) // a fresh context: Load ignores one that has a session
	if err != nil {
		return providers.Identity{}, sessionTokens{}, false, err
	}
	id, ok := s.identity(ctx)
	t, _ := s.tokens(ctx)
	return id, t, ok, nil
}

// csrf is the sign-out form's CSRF token of the request's session, made
// when it has none yet.
func (s *sessions) csrf(ctx context.Context) string {
	c := s.sm.GetString(ctx, keyCSRF)
	if c == "" {
		c = randomToken()
		s.sm.Put(ctx, keyCSRF, c)
	}
	return c
}

// csrfHeld is the CSRF token the session holds, "" when none.
func (s *sessions) csrfHeld(ctx context.Context) string { return s.sm.GetString(ctx, keyCSRF) }

// startSignOutAtIdP records a sign-out at the IdP in progress, in the
// fresh session that ending the old one leaves.
func (s *sessions) startSignOutAtIdP(ctx context.Context, ret signOutReturn) {
	s.sm.Put(ctx, keySignOut, ret)
}

// takeSignOutAtIdP removes and returns the sign-out in progress; ok is
// false when there is none. empty then reports whether the session holds
// nothing else.
func (s *sessions) takeSignOutAtIdP(ctx context.Context) (ret signOutReturn, ok, empty bool) {
	ret, ok = s.sm.Pop(ctx, keySignOut).(signOutReturn)
	return ret, ok, len(s.sm.Keys(ctx)) == 0
}

// backing is the session store as scs uses it, with context support.
func (s *sessions) backing() scs.CtxStore { return ctxStore(s.sm.Store) }

// wrapStore puts f's store between scs and the session store (the
// revocation guard, the metrics).
func (s *sessions) wrapStore(f func(scs.CtxStore) scs.CtxStore) { s.sm.Store = f(ctxStore(s.sm.Store)) }

// maxLifetime is the longest a session can live.
func (s *sessions) maxLifetime() time.Duration { return max(s.sm.Lifetime, s.persistentMax) }
