package broker

import (
	"context"
	"encoding/gob"
	"log/slog"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// backend is what the broker needs from its session store besides scs's
// own Find/Commit/Delete: an index from an IdP session or subject to the
// broker sessions it created (for back-channel logout, which must end every
// session of a user on every replica), single-use markers (spent states,
// logout-token jti), and short locks (one token refresh per session at a
// time). The memory backend serves one process; a shared store serves
// replicas.
type backend interface {
	// indexAdd records that session token belongs to each key until until.
	indexAdd(ctx context.Context, keys []string, token string, until time.Time) error
	// indexTokens lists the sessions recorded under key.
	indexTokens(ctx context.Context, key string) ([]string, error)
	// indexRemove forgets key and everything recorded under it.
	indexRemove(ctx context.Context, key string) error
	// once records key for ttl and reports whether it was new.
	once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// lock takes key for at most ttl; release gives it back early. ok is
	// false when someone else holds it.
	lock(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error)
	// ping reports whether the store answers (readiness).
	ping(ctx context.Context) error
	// secret returns the store's random 32-byte secret called name, the
	// same for every process that shares the store, made on first use
	// and kept as long as the store (pending-login cookies are sealed
	// with one).
	secret(ctx context.Context, name string) ([]byte, error)
}

// openStore builds the configured session store: scs's Store for the
// session data, the broker's backend next to it, and a function that
// releases them. It makes no network call.
func openStore(cfg SessionConfig, now func() time.Time, logger *slog.Logger) (scs.Store, backend, func() error, error) {
	if cfg.Store == "redis" {
		r, err := newRedisStore(cfg.Redis, cfg.cacheTTL(), now, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		return r, r, r.close, nil
	}
	return newMemorySessions(), newMemoryBackend(now), func() error { return nil }, nil
}

// memorySessions is the memory store's scs.Store: scs's memstore without
// its cleanup goroutine (whose StopCleanup races with its start). Expired
// sessions are swept on a write instead, at most once every
// memorySweepInterval, so memory follows the live sessions.
type memorySessions struct {
	mu    sync.RWMutex
	items map[string]memorySession
	swept time.Time
}

type memorySession struct {
	b      []byte
	expiry time.Time
}

const memorySweepInterval = time.Minute

var _ scs.Store = (*memorySessions)(nil)

func newMemorySessions() *memorySessions {
	return &memorySessions{items: map[string]memorySession{}, swept: time.Now()}
}

// Find returns the session of token unless it expired. The bytes are
// shared: callers must not modify them.
func (m *memorySessions) Find(token string) ([]byte, bool, error) {
	m.mu.RLock()
	it, ok := m.items[token]
	m.mu.RUnlock()
	if !ok || !time.Now().Before(it.expiry) {
		return nil, false, nil
	}
	return it.b, true, nil
}

func (m *memorySessions) Commit(token string, b []byte, expiry time.Time) error {
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

func (m *memorySessions) Delete(token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, token)
	return nil
}

// Index keys. The provider is part of every key: identity is (provider, sub).
func sidKey(provider, sid string) string { return "sid:" + provider + ":" + sid }
func subKey(provider, sub string) string { return "sub:" + provider + ":" + sub }

// sessionTokens is what the broker keeps of a login besides the identity:
// enough for RP-initiated logout (the ID token), back-channel logout (sid)
// and refresh. Kept small: it is in every session.
type sessionTokens struct {
	IDToken      string
	RefreshToken string
	Expiry       time.Time // of the access token; zero when unknown
	SID          string
}

const keyTokens = "tokens"

func init() { gob.Register(sessionTokens{}) }

// memoryBackend is the backend of a single process.
type memoryBackend struct {
	now func() time.Time

	mu    sync.Mutex
	index map[string]map[string]time.Time // key → token → until
	marks map[string]time.Time            // once and lock keys → expiry
	swept time.Time                       // last sweepLocked

	secrets map[string][]byte
}

var _ backend = (*memoryBackend)(nil)

func newMemoryBackend(now func() time.Time) *memoryBackend {
	return &memoryBackend{now: now, index: map[string]map[string]time.Time{}, marks: map[string]time.Time{}, swept: now()}
}

func (m *memoryBackend) indexAdd(_ context.Context, keys []string, token string, until time.Time) error {
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

func (m *memoryBackend) indexTokens(_ context.Context, key string) ([]string, error) {
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

func (m *memoryBackend) indexRemove(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.index, key)
	return nil
}

func (m *memoryBackend) once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.markLocked(key, ttl), nil
}

func (m *memoryBackend) lock(_ context.Context, key string, ttl time.Duration) (func(), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.markLocked("lock:"+key, ttl) {
		return nil, false, nil
	}
	return func() {
		m.mu.Lock()
		delete(m.marks, "lock:"+key)
		m.mu.Unlock()
	}, true, nil
}

func (m *memoryBackend) ping(context.Context) error { return nil }

func (m *memoryBackend) secret(_ context.Context, name string) ([]byte, error) {
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
func (m *memoryBackend) markLocked(key string, ttl time.Duration) bool {
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
func (m *memoryBackend) sweepLocked() {
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
