package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/gob"
	"sort"
	"time"
)

// pendingLogin is what the broker keeps server-side between /start and
// /callback. It is keyed by state in the session, so several logins (tabs)
// can be in flight at once without overwriting each other.
type pendingLogin struct {
	Provider    string
	Nonce       string
	Verifier    string
	RedirectURI string
	RD          string
	Created     time.Time
	// Remember: the user asked to stay signed in (session.persistent_max).
	Remember bool
}

// Limits on pending logins.
const (
	pendingTTL = 10 * time.Minute
	maxPending = 8
)

func init() {
	gob.Register(map[string]pendingLogin{})
}

// randomToken returns 32 bytes from crypto/rand, base64url-encoded.
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("broker: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return b
}

// addPending stores p under state, dropping expired entries and, beyond
// maxPending, the oldest ones.
func (s *Server) addPending(ctx context.Context, state string, p pendingLogin) {
	m, _ := s.sessions.sm.Get(ctx, keyPending).(map[string]pendingLogin)
	next := make(map[string]pendingLogin, len(m)+1)
	now := s.now()
	for k, v := range m {
		if now.Sub(v.Created) < pendingTTL {
			next[k] = v
		}
	}
	if len(next) >= maxPending {
		keys := make([]string, 0, len(next))
		for k := range next {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return next[keys[i]].Created.Before(next[keys[j]].Created) })
		for _, k := range keys[:len(next)-maxPending+1] {
			delete(next, k)
		}
	}
	next[state] = p
	s.sessions.sm.Put(ctx, keyPending, next)
}

// popPending removes and returns the login started with state. It is
// single-use twice over: the entry leaves the session, and the state is
// recorded as spent so a concurrent request that loaded the session before
// the removal cannot use it either.
func (s *Server) popPending(ctx context.Context, state string) (pendingLogin, bool) {
	m, _ := s.sessions.sm.Get(ctx, keyPending).(map[string]pendingLogin)
	p, ok := m[state]
	if !ok {
		return pendingLogin{}, false
	}
	next := make(map[string]pendingLogin, len(m))
	for k, v := range m {
		if k != state {
			next[k] = v
		}
	}
	if len(next) == 0 {
		s.sessions.sm.Remove(ctx, keyPending)
	} else {
		s.sessions.sm.Put(ctx, keyPending, next)
	}
	if fresh, err := s.store.once(ctx, "state:"+state, pendingTTL); err != nil || !fresh {
		return pendingLogin{}, false
	}
	return p, true
}
