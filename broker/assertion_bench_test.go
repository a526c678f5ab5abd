package broker

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/providers"
)

// BenchmarkForwardAuthWithAssertion is BenchmarkForwardAuth with the signed
// assertion on: after the first request, a cache hit per request.
func BenchmarkForwardAuthWithAssertion(b *testing.B) {
	srv, cookie := benchServer(b, func(c *Config) { c.Assertion.Enabled = true })
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, func(h http.Header) bool { return h.Get(assertion.DefaultHeader) != "" })
}

// BenchmarkAssertionSign is the cost of one signature (a cache miss): the
// first request of a user, and one per lifetime/3 after that.
func BenchmarkAssertionSign(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			a, err := relay.NewSigner(AssertionConfig{Enabled: true, Algorithm: alg}, "", time.Now,
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			id := providers.Identity{Provider: "kc", Subject: "248289761001", Email: "jane@example.com", EmailVerified: true,
				Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops", "admins"}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := a.Token("https://auth.example.com", strconv.Itoa(i), id); err != nil { // a new audience: a miss
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAssertionCacheHit is what the assertion adds to a relay once
// signed: the issuer string, a cache lookup, the identity comparison.
func BenchmarkAssertionCacheHit(b *testing.B) {
	srv, _ := benchServer(b, func(c *Config) { c.Assertion.Enabled = true })
	id := providers.Identity{Provider: "kc", Subject: "248289761001", Email: "jane@example.com", EmailVerified: true,
		Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops", "admins"}}
	r := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
	h := http.Header{}
	srv.relayIdentity(h, r, id, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := srv.assertion.Token(srv.originOf(r).String(), "", id); err != nil {
			b.Fatal(err)
		}
	}
}
