package session

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestEndedStaysEnded: a session ended elsewhere (EndStored) is not
// written back by a request that loaded it before, the broker is told of
// it, and its refresh lock is one request's at a time.
func TestEndedStaysEnded(t *testing.T) {
	st := store.NewMemorySessions()
	m := New(Config{CookieName: "s", Lifetime: time.Hour}, st, nil)
	var ended []string
	m.GuardEnds(Ending{Backend: store.NewMemoryBackend(time.Now), Now: time.Now,
		Ended: func(token string) { ended = append(ended, token) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	id := providers.Identity{Provider: "p", Subject: "alice"}
	token, err := m.Create(t.Context(), id, Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	held, err := m.Load(t.Context(), token, false) // a request in flight
	if err != nil {
		t.Fatal(err)
	}
	release, ok, err := m.LockRefresh(held)
	if err != nil || !ok {
		t.Fatalf("refresh lock: %v %v", ok, err)
	}
	if _, again, _ := m.LockRefresh(held); again {
		t.Error("the refresh lock was taken twice")
	}
	release()
	if found, err := m.EndStored(t.Context(), token); err != nil || !found {
		t.Fatalf("EndStored = %v, %v", found, err)
	}
	m.SetLogin(held, id, Tokens{IDToken: "x"}) // modified: scs commits it
	if err := m.Commit(held); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := st.Find(token); found {
		t.Error("the ended session was written back")
	}
	if len(ended) != 1 || ended[0] != token {
		t.Errorf("told of %v, want the ended token", ended)
	}
}

// deleteHook is a memory store that runs afterDelete once, right after a
// deletion: another request's commit landing there.
type deleteHook struct {
	*store.MemorySessions
	afterDelete func()
}

func (h *deleteHook) Delete(token string) error {
	err := h.MemorySessions.Delete(token)
	if f := h.afterDelete; f != nil {
		h.afterDelete = nil
		f()
	}
	return err
}

// TestEndMarksFirst: a request of the same session that commits while
// sign-out runs, right after its deletion, does not write the session back:
// End marks it revoked before deleting it (review finding: with the mark
// second, that commit found no mark and the session lived on).
func TestEndMarksFirst(t *testing.T) {
	st := &deleteHook{MemorySessions: store.NewMemorySessions()}
	m := New(Config{CookieName: "s", Lifetime: time.Hour}, st, nil)
	m.GuardEnds(Ending{Backend: store.NewMemoryBackend(time.Now), Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	id := providers.Identity{Provider: "p", Subject: "alice"}
	token, err := m.Create(t.Context(), id, Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := m.Load(t.Context(), token, false)    // a request in flight
	signout, _ := m.Load(t.Context(), token, false) // sign-out
	committed := false
	st.afterDelete = func() {
		m.SetLogin(held, id, Tokens{IDToken: "x"}) // modified: scs commits it
		committed = m.Commit(held) == nil
	}
	if err := m.End(signout); err != nil {
		t.Fatal(err)
	}
	if !committed {
		t.Fatal("the concurrent request's commit did not run")
	}
	if _, found, _ := st.Find(token); found {
		t.Error("the signed-out session was written back between its deletion and its mark")
	}
}

// TestEndMarksUntilDeadline: the revocation mark of a session ended by its
// own request lasts until the session's deadline (and revocationSkew), not
// as long as any session can live: a request that writes the session back
// after that writes an expired session. One ended elsewhere, whose deadline
// is not read, is marked for the longest lifetime.
func TestEndMarksUntilDeadline(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st := store.NewMemorySessions()
	m := New(Config{CookieName: "s", Lifetime: time.Hour, PersistentMax: 30 * 24 * time.Hour}, st, nil)
	backend := store.NewMemoryBackend(clock)
	m.GuardEnds(Ending{Backend: backend, Now: clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	id := providers.Identity{Provider: "p", Subject: "alice"}
	own, err := m.Create(t.Context(), id, Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := m.Create(t.Context(), id, Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := m.Load(t.Context(), own, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := m.Deadline(ctx)
	if err := m.End(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.EndStored(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	revoked := func(token string) bool {
		r, err := m.revoked(t.Context(), token)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	now = deadline.Add(revocationSkew - time.Second)
	if !revoked(own) || !revoked(other) {
		t.Fatal("a mark ended before its session's deadline")
	}
	now = deadline.Add(revocationSkew + time.Second)
	if revoked(own) {
		t.Error("the mark of a session ended by its own request outlives its deadline")
	}
	if !revoked(other) {
		t.Error("the mark of a session ended elsewhere ended with the lifetime, not the longest one")
	}
}

// TestIndexOnCommit: the commit of a session SignIn made lists its token
// under the keys IndexOnCommit names (a back-channel logout finds it),
// until its deadline; another token's commit in that context does not.
func TestIndexOnCommit(t *testing.T) {
	st := store.NewMemorySessions()
	m := New(Config{CookieName: "s", Lifetime: time.Hour}, st, nil)
	backend := store.NewMemoryBackend(time.Now)
	m.GuardEnds(Ending{Backend: backend, Now: time.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, err := m.Load(t.Context(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SignIn(ctx, providers.Identity{Provider: "p", Subject: "alice"}, Tokens{}, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(indexedOnCommit(ctx, m, []string{"sub:p:alice", "sid:p:s1"})); err != nil {
		t.Fatal(err)
	}
	token := m.Token(ctx)
	if _, found, _ := st.Find(token); !found {
		t.Fatal("not written")
	}
	for _, k := range []string{"sub:p:alice", "sid:p:s1"} {
		if got, _ := backend.IndexTokens(t.Context(), k); len(got) != 1 || got[0] != token {
			t.Errorf("index %s: %v, want the new token", k, got)
		}
	}
	// A session loaded within that context (another token) is not indexed.
	other, err := m.Load(indexedOnCommit(ctx, m, []string{"sub:p:bob"}), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SignIn(other, providers.Identity{Provider: "p", Subject: "bob"}, Tokens{}, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(other); err != nil {
		t.Fatal(err)
	}
	if got, _ := backend.IndexTokens(t.Context(), "sub:p:bob"); len(got) != 0 {
		t.Errorf("another token's commit indexed %v", got)
	}
}

// indexedOnCommit is Manager.IndexOnCommit without a single-use mark.
func indexedOnCommit(ctx context.Context, m *Manager, keys []string) context.Context {
	ctx, _ = m.IndexOnCommit(ctx, keys, "", 0)
	return ctx
}
