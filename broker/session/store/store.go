// Package store keeps the broker's sessions: scs's Store for the session
// data (memory, or Redis shared by replicas), and next to it the Backend
// the broker needs besides (the index, single-use marks, locks, secrets).
// The Redis store has a read cache of encoded sessions, kept true by an
// invalidation channel (cache.go); it finds and follows its primary
// through Redis Sentinel (primary.go), and keeps the revocations replicas
// have not confirmed until they do (journal.go). One conformance suite
// (conformance_test.go) runs against every implementation.
//
// The package knows no session format: it stores bytes under tokens.
package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Backend is what the broker needs from its session store besides scs's
// own Find/Commit/Delete: an index from an IdP session or subject to the
// broker sessions it created (for back-channel logout, which must end every
// session of a user on every replica), single-use marks (spent states,
// logout-token jti, revocations), short locks (one token refresh per
// session at a time) and secrets. The memory backend serves one process; a
// shared store serves replicas.
//
// The contract, which the conformance suite checks for every
// implementation:
//   - IndexAdd records that the session token belongs to each key until
//     until; IndexTokens lists the tokens under key whose until has not
//     passed, in any order; IndexRemove forgets key and everything under it.
//   - Once records key for ttl and reports whether it was new: of
//     concurrent callers with one key, exactly one gets true, until ttl
//     passes.
//   - Lock takes key for at most ttl; ok is false while someone else holds
//     it; release gives it back early.
//   - Ping reports whether the store answers (readiness).
//   - Secret returns the store's random 32-byte secret called name, made
//     on first use, the same for every process that shares the store, and
//     kept as long as the store (pending-login cookies are sealed with one).
//
// Every method honours ctx and is safe for concurrent use. Errors are
// failures of the store (an outage), never "not found".
type Backend interface {
	IndexAdd(ctx context.Context, keys []string, token string, until time.Time) error
	IndexTokens(ctx context.Context, key string) ([]string, error)
	IndexRemove(ctx context.Context, key string) error
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Lock(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error)
	Ping(ctx context.Context) error
	Secret(ctx context.Context, name string) ([]byte, error)
}

// GuardedCommitter is a session store that writes a session unless an
// index key (IndexAdd, IndexTokens) lists a token whose until has not
// passed, as one atomic step: the revocation guard's check and its write
// with no gap between them, in one round trip. With add, the same step
// also lists the token under add.Keys (IndexAdd's entries), only when it
// writes. written is false when the key listed one and nothing was
// written (nor indexed). A wrapper whose inner store has no such step
// returns errors.ErrUnsupported.
type GuardedCommitter interface {
	CommitUnlessIndexedCtx(ctx context.Context, token string, b []byte, expiry time.Time, key string, add Addition) (written bool, err error)
}

// Addition is what a guarded commit does besides the write, in the same
// step (a login's: the new session's index entries).
type Addition struct {
	// Keys list the token until Until, as IndexAdd(Keys, token, Until)
	// does; none without Keys.
	Keys  []string
	Until time.Time
	// Fresh: the token was never written before (a login's new token), so
	// no replica can have its session cached: the write publishes no
	// invalidation.
	Fresh bool
	// Once, when set, is marked used for OnceTTL in the same step, as
	// Backend.Once(Once, OnceTTL) marks it: a login's single-use state. When
	// it was marked already, nothing is written (nor indexed) and the
	// commit fails with ErrOnceUsed.
	Once    string
	OnceTTL time.Duration
}

// ErrOnceUsed is a guarded commit's refusal when its Addition.Once was
// used already (a replayed login).
var ErrOnceUsed = errors.New("store: single-use mark used already")

// MemorySessions is the memory store's scs.Store: scs's memstore without
// its cleanup goroutine (whose StopCleanup races with its start). Expired
// sessions are swept on a write instead, at most once every
// memorySweepInterval, so memory follows the live sessions.
type MemorySessions struct {
	mu    sync.RWMutex
	items map[string]memorySession
	swept time.Time
}

type memorySession struct {
	b      []byte
	expiry time.Time
}

const memorySweepInterval = time.Minute

var _ scs.Store = (*MemorySessions)(nil)

func NewMemorySessions() *MemorySessions {
	return &MemorySessions{items: map[string]memorySession{}, swept: time.Now()}
}

// Find returns the session of token unless it expired. The bytes are
// shared: callers must not modify them.
func (m *MemorySessions) Find(token string) ([]byte, bool, error) {
	m.mu.RLock()
	it, ok := m.items[token]
	m.mu.RUnlock()
	if !ok || !time.Now().Before(it.expiry) {
		return nil, false, nil
	}
	return it.b, true, nil
}

func (m *MemorySessions) Commit(token string, b []byte, expiry time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[token] = memorySession{b: b, expiry: expiry}
	if now := time.Now(); now.Sub(m.swept) >= memorySweepInterval {
		m.swept = now
		for t, it := range m.items {
			if !now.Before(it.expiry) {
				delete(m.items, t)
			}
		}
	}
	return nil
}

func (m *MemorySessions) Delete(token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, token)
	return nil
}

// MemoryBackend is the backend of a single process.
type MemoryBackend struct {
	now func() time.Time

	mu    sync.Mutex
	index map[string]map[string]time.Time // key → token → until
	marks map[string]time.Time            // once and lock keys → expiry
	swept time.Time                       // last sweepLocked

	secrets map[string][]byte
	// holders: the hold (a count of Lock calls) that has each lock, so
	// that a release after the lock expired and went to another frees
	// nothing.
	holders map[string]uint64
	holds   uint64
}

var _ Backend = (*MemoryBackend)(nil)

func NewMemoryBackend(now func() time.Time) *MemoryBackend {
	return &MemoryBackend{now: now, index: map[string]map[string]time.Time{}, marks: map[string]time.Time{}, swept: now()}
}

func (m *MemoryBackend) IndexAdd(_ context.Context, keys []string, token string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked()
	for _, k := range keys {
		if m.index[k] == nil {
			m.index[k] = map[string]time.Time{}
		}
		m.index[k][token] = until
	}
	return nil
}

func (m *MemoryBackend) IndexTokens(_ context.Context, key string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []string
	for t, until := range m.index[key] {
		if now.Before(until) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (m *MemoryBackend) IndexRemove(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.index, key)
	return nil
}

func (m *MemoryBackend) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.markLocked(key, ttl), nil
}

func (m *MemoryBackend) Lock(_ context.Context, key string, ttl time.Duration) (func(), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.markLocked("lock:"+key, ttl) {
		return nil, false, nil
	}
	m.holds++
	if m.holders == nil {
		m.holders = map[string]uint64{}
	}
	mine := m.holds
	m.holders[key] = mine
	return func() {
		// Only this hold: after its ttl the lock may be another's.
		m.mu.Lock()
		if m.holders[key] == mine {
			delete(m.marks, "lock:"+key)
			delete(m.holders, key)
		}
		m.mu.Unlock()
	}, true, nil
}

func (m *MemoryBackend) Ping(context.Context) error { return nil }

func (m *MemoryBackend) Secret(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.secrets == nil {
		m.secrets = map[string][]byte{}
	}
	if m.secrets[name] == nil {
		m.secrets[name] = randomBytes(32)
	}
	return m.secrets[name], nil
}

// markLocked sets key unless it is set and unexpired.
func (m *MemoryBackend) markLocked(key string, ttl time.Duration) bool {
	now := m.now()
	if exp, ok := m.marks[key]; ok && now.Before(exp) {
		return false
	}
	m.sweepLocked()
	m.marks[key] = now.Add(ttl)
	return true
}

// sweepLocked drops expired entries, on a write at most once per
// memorySweepInterval, so memory follows the live sessions (the index stays
// consistent when sessions expire) without walking every entry often.
func (m *MemoryBackend) sweepLocked() {
	now := m.now()
	if now.Sub(m.swept) < memorySweepInterval {
		return
	}
	m.swept = now
	for k, exp := range m.marks {
		if !now.Before(exp) {
			delete(m.marks, k)
		}
	}
	for k := range m.holders {
		if _, held := m.marks["lock:"+k]; !held {
			delete(m.holders, k)
		}
	}
	for k, toks := range m.index {
		for t, until := range toks {
			if !now.Before(until) {
				delete(toks, t)
			}
		}
		if len(toks) == 0 {
			delete(m.index, k)
		}
	}
}
