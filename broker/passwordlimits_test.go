package broker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/providers"
)

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
	for i := range ratelimit.PairFailures {
		if wait := try(); wait > 0 {
			t.Fatalf("attempt %d limited already", i+1)
		}
	}
	if wait := try(); wait == 0 {
		t.Errorf("after %d attempts whose clients hung up, another attempt is not limited: they were refunded", ratelimit.PairFailures)
	}
}
