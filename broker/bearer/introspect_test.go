package bearer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestIntrospectionRefusesWhenBusy: with every introspection slot taken, an
// opaque token is refused at once instead of queueing (an anonymous flood
// must not hold a goroutine and a connection per request).
func TestIntrospectionRefusesWhenBusy(t *testing.T) {
	v := &Verifier{sem: make(chan struct{}, maxIntrospections),
		issuers: []issuer{{id: "a", cfg: providers.APITokensConfig{Introspection: true}}}}
	for range maxIntrospections {
		v.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := v.introspect(ctx, "opaque", time.Now())
	if !errors.Is(err, errIntrospectionBusy) {
		t.Fatalf("err = %v, want errIntrospectionBusy", err)
	}
	if ctx.Err() != nil {
		t.Fatal("introspect waited for a slot")
	}
}
