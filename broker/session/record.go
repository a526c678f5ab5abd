package session

import (
	"context"
	"encoding/gob"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The session as a typed record: what a session holds (the identity, the
// login's tokens, the sign-out form's CSRF token, a sign-out at the IdP in
// progress, "keep me signed in") and the operations on it. The handlers go
// through these methods, never through keys and type assertions. Values
// read are shared with other requests (cache.go): a change is a new value
// put, never a value modified in place.

// Token is the request's session token ("" before one is made).
func (s *Manager) Token(ctx context.Context) string { return s.sm.Token(ctx) }

// Deadline is when the request's session expires.
func (s *Manager) Deadline(ctx context.Context) time.Time { return s.sm.Deadline(ctx) }

// Tokens are the login's tokens; ok is false when the session has none.
func (s *Manager) Tokens(ctx context.Context) (t Tokens, ok bool) {
	t, ok = s.sm.Get(ctx, keyTokens).(Tokens)
	return t, ok
}

// SignIn makes the request's session the login of id, with its tokens
// (none when zero): a new session token first (no fixation), then the
// record. remember makes it persistent (session.persistent_max). It fails
// only when the store cannot renew the token.
func (s *Manager) SignIn(ctx context.Context, id providers.Identity, t Tokens, remember bool) error {
	if err := s.sm.RenewToken(ctx); err != nil {
		return err
	}
	if remember {
		s.remember(ctx)
	}
	s.sm.Remove(ctx, keyPending) // of an earlier version
	s.sm.Put(ctx, keyIdentity, id)
	s.sm.Remove(ctx, keyLogin) // compact.go: packed for another login
	s.sm.Remove(ctx, keyTokens)
	if t != (Tokens{}) {
		s.sm.Put(ctx, keyTokens, t)
	}
	return nil
}

// SetLogin replaces the login of the request's session (a refresh).
func (s *Manager) SetLogin(ctx context.Context, id providers.Identity, t Tokens) {
	s.sm.Remove(ctx, keyLogin) // compact.go: packed for the old login
	s.sm.Put(ctx, keyIdentity, id)
	s.sm.Put(ctx, keyTokens, t)
}

// Commit writes the request's session to the store now, before the
// response (save writes the cookie).
func (s *Manager) Commit(ctx context.Context) error {
	_, _, err := s.sm.Commit(ctx)
	return err
}

// Destroy deletes the request's session; the response clears its cookie.
// It does not revoke: a signed-in session ends through End (end.go).
func (s *Manager) Destroy(ctx context.Context) error { return s.sm.Destroy(ctx) }

// Stored reads the session of token from the store, not from the request:
// found is false when it no longer exists (or has no identity).
func (s *Manager) Stored(token string) (providers.Identity, Tokens, bool, error) {
	ctx, err := s.LoadStored(token)
	if err != nil {
		return providers.Identity{}, Tokens{}, false, err
	}
	id, ok := s.Identity(ctx)
	t, _ := s.Tokens(ctx)
	return id, t, ok, nil
}

// CSRF is the sign-out form's CSRF token of the request's session, made
// when it has none yet.
func (s *Manager) CSRF(ctx context.Context) string {
	c := s.sm.GetString(ctx, keyCSRF)
	if c == "" {
		c = randomToken()
		s.sm.Put(ctx, keyCSRF, c)
	}
	return c
}

// CSRFHeld is the CSRF token the session holds, "" when none.
func (s *Manager) CSRFHeld(ctx context.Context) string { return s.sm.GetString(ctx, keyCSRF) }

// StartSignOutAtIdP records a sign-out at the IdP in progress, in the
// fresh session that ending the old one leaves.
func (s *Manager) StartSignOutAtIdP(ctx context.Context, ret SignOutReturn) {
	s.sm.Put(ctx, keySignOut, ret)
}

// TakeSignOutAtIdP removes and returns the sign-out in progress; ok is
// false when there is none. empty then reports whether the session holds
// nothing else.
func (s *Manager) TakeSignOutAtIdP(ctx context.Context) (ret SignOutReturn, ok, empty bool) {
	ret, ok = s.sm.Pop(ctx, keySignOut).(SignOutReturn)
	return ret, ok, len(s.sm.Keys(ctx)) == 0
}

// Backing is the session store as scs uses it, with context support.
func (s *Manager) Backing() scs.CtxStore { return ContextStore(s.sm.Store) }

// WrapStore puts f's store between scs and the session store (the
// revocation guard, the metrics).
func (s *Manager) WrapStore(f func(scs.CtxStore) scs.CtxStore) {
	s.sm.Store = f(ContextStore(s.sm.Store))
}

// MaxLifetime is the longest a session can live.
func (s *Manager) MaxLifetime() time.Duration { return max(s.sm.Lifetime, s.persistentMax) }

// Tokens is what the broker keeps of a login besides the identity:
// enough for RP-initiated logout (the ID token), back-channel logout (sid)
// and refresh. Kept small: it is in every session.
type Tokens struct {
	IDToken      string
	RefreshToken string
	// AccessToken is kept for the apps that ask for it
	// (pass_access_token); sessions written before it was kept have none.
	AccessToken string
	Expiry      time.Time // of the access token; zero when unknown
	SID         string
}

const keyTokens = "tokens"

// The names under which session values are registered are part of every
// stored session: they are written out, not taken from the package path,
// so that moving a type keeps sessions already in Redis readable
// (TestSessionEncodingGolden).
func init() {
	gob.RegisterName("github.com/oidc-broker/oidc-broker/broker.sessionTokens", Tokens{})
}

// SignOutReturn is a sign-out at the IdP in progress: where the browser
// goes when the IdP sends it back, and the state that proves it is this
// browser's sign-out.
type SignOutReturn struct {
	Provider string
	State    string
	RD       string // validated at the sign-out, and again on return
	Created  time.Time
}

// keySignOut holds the SignOutReturn of a sign-out in progress.
const keySignOut = "signout"

// keyPending named the pending logins in sessions of earlier versions,
// which kept them in the session (they are sealed cookies now).
const keyPending = "pending"

// legacyPending is a pending login as earlier versions kept it in the
// session: registered so that those sessions still decode (SignIn removes
// the entry). gob matches its fields by name.
type legacyPending struct {
	State       string
	Provider    string
	Nonce       string
	Verifier    string
	RedirectURI string
	RD          string
	Created     time.Time
	Remember    bool
	Browser     string
}

func init() {
	// Registered under its name of today, written out (see Tokens).
	gob.RegisterName("github.com/oidc-broker/oidc-broker/broker.signOutReturn", SignOutReturn{})
	gob.RegisterName("map[string]broker.pendingLogin", map[string]legacyPending{})
}

// ContextStore is st with context support.
func ContextStore(st scs.Store) scs.CtxStore {
	if cs, ok := st.(scs.CtxStore); ok {
		return cs
	}
	return plainStore{st}
}

// plainStore gives a store without context support (the memory store) the
// context methods, which ignore the context.
type plainStore struct{ scs.Store }

// Unwrap is the store plainStore adapts.
func (p plainStore) Unwrap() scs.Store { return p.Store }

func (p plainStore) FindCtx(_ context.Context, token string) ([]byte, bool, error) {
	return p.Find(token)
}

func (p plainStore) CommitCtx(_ context.Context, token string, b []byte, expiry time.Time) error {
	return p.Commit(token, b, expiry)
}

func (p plainStore) DeleteCtx(_ context.Context, token string) error { return p.Delete(token) }

// LoadStored loads the session of token from the store into a fresh
// context, apart from any request (a request's own session is Load's).
func (s *Manager) LoadStored(token string) (context.Context, error) {
	return s.sm.Load(context.Background(), token) // a fresh context: Load ignores one that has a session
}

// Create stores a new session signed in as id, with the tokens t, without
// a login, and returns its token: for benchmarks and tests that need many
// sessions, and for programs that bring their own sign-in.
func (s *Manager) Create(ctx context.Context, id providers.Identity, t Tokens) (string, error) {
	ctx, err := s.sm.Load(ctx, "")
	if err != nil {
		return "", err
	}
	s.sm.Put(ctx, keyIdentity, id)
	if t != (Tokens{}) {
		s.sm.Put(ctx, keyTokens, t)
	}
	token, _, err := s.sm.Commit(ctx)
	return token, err
}

// Encode is the bytes the store keeps for a session signed in as id with
// the tokens t, until deadline (to measure them).
func Encode(deadline time.Time, id providers.Identity, t Tokens) ([]byte, error) {
	return (&sessionCodec{}).Encode(deadline, map[string]any{keyIdentity: id, keyTokens: t})
}
