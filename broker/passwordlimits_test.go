package broker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestLimitKeyIgnoresSpelling: directories match usernames ignoring case
// and spaces, so the limits count the account, not one spelling of it.
func TestLimitKeyIgnoresSpelling(t *testing.T) {
	want := userKey("corp", "alice")
	for _, spelling := range []string{"ALICE", " alice", "alice  ", "Alice"} {
		if got := userKey("corp", spelling); got != want {
			t.Errorf("userKey(%q) = %q, want %q", spelling, got, want)
		}
	}
	if userKey("corp", "al ice") == want || userKey("other", "alice") == want {
		t.Error("different accounts share a key")
	}
}

// slowDirectory judges every password wrong after a delay, or reports
// itself unavailable when the context ends first (as a directory
// connection closed mid-bind does).
type slowDirectory struct{}

func (slowDirectory) Authenticate(ctx context.Context, _, _ string) (*providers.Result, error) {
	select {
	case <-ctx.Done():
		return nil, &providers.UnavailableError{Provider: "corp", Err: ctx.Err()}
	case <-time.After(20 * time.Millisecond):
		return nil, providers.ErrInvalidCredentials
	}
}

// TestPasswordAttemptCountsWhenTheClientHangsUp: a client that goes away
// once its password was sent still spends the attempt.
func TestPasswordAttemptCountsWhenTheClientHangsUp(t *testing.T) {
	e := newEnv(t)
	try := func() time.Duration {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the client hung up
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/oauth2/local/corp", nil)
		_, wait, _ := e.server.checkPassword(r, "corp", slowDirectory{}, "alice", "guess")
		return wait
	}
	for i := range pairFailures {
		if wait := try(); wait > 0 {
			t.Fatalf("attempt %d limited already", i+1)
		}
	}
	if wait := try(); wait == 0 {
		t.Errorf("after %d attempts whose clients hung up, another attempt is not limited: they were refunded", pairFailures)
	}
}
