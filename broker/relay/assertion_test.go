package relay

import (
	"github.com/oidc-broker/oidc-broker/internal/testsupport/testclock"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

func TestAssertionCache(t *testing.T) {
	clk := testclock.At(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	a, err := NewSigner(AssertionConfig{Enabled: true}, "", clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	id := providers.Identity{Provider: "kc", Subject: "1", Name: "Jane", Groups: []string{"a"}}
	tok := func(aud string, id providers.Identity) string {
		t.Helper()
		s, err := a.Token("https://auth.example", aud, id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := tok("", id)
	clk.Add(3 * time.Minute) // 2 minutes left: more than a third
	if tok("", id) != first {
		t.Error("re-signed with two thirds of the lifetime left")
	}
	if tok(DefaultAssertionAudience, id) != first {
		t.Error("the default audience named explicitly is another entry")
	}
	if tok("other-app", id) == first {
		t.Error("one token for two audiences")
	}
	changed := id
	changed.Groups = []string{"a", "b"}
	if tok("", changed) == first {
		t.Error("the groups changed, the token did not")
	}
	clk.Add(21 * time.Second) // less than a third left
	renewed := tok("", changed)
	if renewed == first || tok("", changed) != renewed {
		t.Error("not renewed near expiry, or renewed twice")
	}

	// The cache is bounded.
	for i := range maxCachedAssertions + 10 {
		_ = tok("", providers.Identity{Provider: "kc", Subject: strconv.Itoa(i)})
	}
	a.mu.RLock()
	n := len(a.cache)
	a.mu.RUnlock()
	if n > maxCachedAssertions {
		t.Errorf("%d cached assertions, more than %d", n, maxCachedAssertions)
	}
}
