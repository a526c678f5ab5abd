package backchannel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// verifier answers every token with its claims or its error.
type verifier struct {
	claims providers.LogoutClaims
	err    error
}

func (v verifier) VerifyLogoutToken(context.Context, string) (providers.LogoutClaims, error) {
	return v.claims, v.err
}

func key(kind string) func(provider, v string) string {
	return func(provider, v string) string { return kind + ":" + provider + ":" + v }
}

// TestEnd: a token with sid and sub ends the session of its sid and the
// sub's sessions that recorded no sid, not the sub's other IdP sessions; a
// replayed jti ends nothing; the ended sessions stay ended.
func TestEnd(t *testing.T) {
	ctx := t.Context()
	backend := store.NewMemoryBackend(time.Now)
	m := session.New(session.Config{CookieName: "s", Lifetime: time.Hour}, store.NewMemorySessions(), nil)
	m.GuardEnds(session.Ending{Backend: backend, Now: time.Now, Ended: func(string) {}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	l := Logout{Store: backend, Sessions: m, SIDKey: key("sid"), SubKey: key("sub")}
	id := providers.Identity{Provider: "p", Subject: "alice"}
	login := func(sid string) string {
		tok, err := m.Create(ctx, id, session.Tokens{SID: sid})
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{"sub:p:alice"}
		if sid != "" {
			keys = append(keys, "sid:p:"+sid)
		}
		if err := backend.IndexAdd(ctx, keys, tok, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	one, other, sidless := login("s1"), login("s2"), login("")

	claims := providers.LogoutClaims{SID: "s1", Subject: "alice", JTI: "j1"}
	ended, err := l.End(ctx, "p", verifier{claims: claims}, "raw")
	if err != nil || ended != (Ended{Sessions: 2, By: "sid", Subject: "alice"}) {
		t.Fatalf("End = %+v, %v", ended, err)
	}
	for tok, want := range map[string]bool{one: false, other: true, sidless: false} {
		if _, _, ok, err := m.Stored(tok); err != nil || ok != want {
			t.Errorf("session %s kept = %v (%v), want %v", tok, ok, err, want)
		}
	}
	var refusal *Refusal
	if _, err := l.End(ctx, "p", verifier{claims: claims}, "raw"); !errors.As(err, &refusal) ||
		refusal.Status != http.StatusBadRequest || refusal.Reason.Why() != audit.Replayed {
		t.Errorf("replay: %v", err)
	}
}

// TestEndRefusals: an unverifiable token is a 400, an unreachable IdP a
// 503; the cause is kept for the log.
func TestEndRefusals(t *testing.T) {
	l := Logout{Store: store.NewMemoryBackend(time.Now), SIDKey: key("sid"), SubKey: key("sub")}
	bad := errors.New("bad signature")
	for _, c := range []struct {
		err    error
		status int
		why    audit.Why
	}{
		{bad, http.StatusBadRequest, audit.Verification},
		{&providers.UnavailableError{Provider: "p", Err: bad}, http.StatusServiceUnavailable, audit.IdPUnavailable},
	} {
		_, err := l.End(t.Context(), "p", verifier{err: c.err}, "raw")
		var refusal *Refusal
		if !errors.As(err, &refusal) || refusal.Status != c.status || refusal.Reason.Why() != c.why || !errors.Is(err, bad) {
			t.Errorf("%v: %v", c.err, err)
		}
	}
}
