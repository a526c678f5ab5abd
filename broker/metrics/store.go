package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// The session store, measured: every operation of scs's store
// (ObserveStore) and, through ObserveBackend, of the broker's store.Backend is timed
// (oidc_broker_session_store_duration_seconds) and its failures counted
// (oidc_broker_session_store_errors_total), by operation. The wrappers
// change nothing else: the same calls reach the same store, and the
// context methods stay available.

// ObserveStore wraps scs's store. The result has the context methods
// (scs.CtxStore; plain methods ignore the context). Neither of the broker's
// stores iterates, and the broker never asks scs to.
func (m *Collectors) ObserveStore(st scs.Store) scs.Store {
	return &observedStore{inner: session.ContextStore(st), m: m}
}

// ObserveBackend wraps the broker's backend. Methods this file does not
// know (added to store.Backend later) pass through unmeasured.
func (m *Collectors) ObserveBackend(b store.Backend) store.Backend {
	return &observedBackend{Backend: b, m: m}
}

// Unobserved is the store.Backend b wraps, or b (for code that reaches into a
// particular store).
func Unobserved(b store.Backend) store.Backend {
	if o, ok := b.(*observedBackend); ok {
		return o.Backend
	}
	return b
}

// observe records one operation that started at start.
func (m *Collectors) observe(op string, start time.Time, err error) {
	o, ok := m.storeOps[op]
	if !ok {
		o = storeOp{duration: m.storeDuration.WithLabelValues(op), errors: m.storeErrors.WithLabelValues(op)}
	}
	o.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		o.errors.Inc()
	}
}

type observedStore struct {
	inner scs.CtxStore
	m     *Collectors
}

var (
	_ scs.CtxStore  = (*observedStore)(nil)
	_ store.Backend = (*observedBackend)(nil)
)

func (o *observedStore) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	defer func(start time.Time) { o.m.observe("find", start, err) }(time.Now())
	return o.inner.FindCtx(ctx, token)
}

func (o *observedStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) (err error) {
	defer func(start time.Time) { o.m.observe("commit", start, err) }(time.Now())
	return o.inner.CommitCtx(ctx, token, b, expiry)
}

// CommitUnlessIndexedCtx is the inner store's, observed as a commit, or
// errors.ErrUnsupported when it has none.
func (o *observedStore) CommitUnlessIndexedCtx(ctx context.Context, token string, b []byte, expiry time.Time, key string, add store.Addition) (written bool, err error) {
	g, ok := o.inner.(store.GuardedCommitter)
	if !ok {
		return false, errors.ErrUnsupported
	}
	defer func(start time.Time) {
		if errors.Is(err, store.ErrOnceUsed) {
			o.m.observe("commit", start, nil) // a replayed login's refusal: the store answered
			return
		}
		o.m.observe("commit", start, err)
	}(time.Now())
	return g.CommitUnlessIndexedCtx(ctx, token, b, expiry, key, add)
}

func (o *observedStore) DeleteCtx(ctx context.Context, token string) (err error) {
	defer func(start time.Time) { o.m.observe("delete", start, err) }(time.Now())
	return o.inner.DeleteCtx(ctx, token)
}

func (o *observedStore) Find(token string) ([]byte, bool, error) {
	return o.FindCtx(context.Background(), token)
}

func (o *observedStore) Commit(token string, b []byte, expiry time.Time) error {
	return o.CommitCtx(context.Background(), token, b, expiry)
}

func (o *observedStore) Delete(token string) error { return o.DeleteCtx(context.Background(), token) }

type observedBackend struct {
	store.Backend
	m *Collectors
}

func (o *observedBackend) IndexAdd(ctx context.Context, keys []string, token string, until time.Time) (err error) {
	defer func(start time.Time) { o.m.observe("index_add", start, err) }(time.Now())
	return o.Backend.IndexAdd(ctx, keys, token, until)
}

func (o *observedBackend) IndexTokens(ctx context.Context, key string) (tokens []string, err error) {
	defer func(start time.Time) { o.m.observe("index_tokens", start, err) }(time.Now())
	return o.Backend.IndexTokens(ctx, key)
}

func (o *observedBackend) IndexRemove(ctx context.Context, key string) (err error) {
	defer func(start time.Time) { o.m.observe("index_remove", start, err) }(time.Now())
	return o.Backend.IndexRemove(ctx, key)
}

func (o *observedBackend) Once(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error) {
	defer func(start time.Time) { o.m.observe("once", start, err) }(time.Now())
	return o.Backend.Once(ctx, key, ttl)
}

// lock times taking the lock; release, which reports no error, is timed as
// "unlock".
func (o *observedBackend) Lock(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error) {
	defer func(start time.Time) { o.m.observe("lock", start, err) }(time.Now())
	release, ok, err = o.Backend.Lock(ctx, key, ttl)
	if release != nil {
		inner := release
		release = func() {
			defer func(start time.Time) { o.m.observe("unlock", start, nil) }(time.Now())
			inner()
		}
	}
	return release, ok, err
}

func (o *observedBackend) Ping(ctx context.Context) (err error) {
	defer func(start time.Time) { o.m.observe("ping", start, err) }(time.Now())
	return o.Backend.Ping(ctx)
}
