package broker

import (
	"context"
	"testing"
)

func TestLoginIsIndexed(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	toks, err := e.server.store.IndexTokens(context.Background(), subKey("alpha", "alpha-alice"))
	if err != nil || len(toks) != 1 {
		t.Fatalf("index: %v %v", toks, err)
	}
	// The indexed token is the live session: deleting it signs the user out.
	if err := e.server.sessions.Backing().DeleteCtx(context.Background(), toks[0]); err != nil {
		t.Fatal(err)
	}
	if e.signedIn(e.client) {
		t.Error("still signed in after the indexed session was deleted")
	}
}
