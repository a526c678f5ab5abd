package assertion_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/assertion"
)

// An app behind the broker at https://auth.example.com, configured there
// with the audience https://dashboards.example.com, accepts only requests
// that carry a valid assertion.
func ExampleVerifier_Middleware() {
	v, err := assertion.NewVerifier(context.Background(), assertion.Config{
		JWKSURL:  "https://auth.example.com/oauth2/jwks",
		Issuer:   "https://auth.example.com",
		Audience: "https://dashboards.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := assertion.FromContext(r.Context())
		fmt.Fprintf(w, "Hello, %s (%s)\n", id.Name, id.User)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", v.Middleware(assertion.DefaultHeader)(app)))
}

// A handler behind Middleware reads the identity from its context.
func ExampleFromContext() {
	admin := func(w http.ResponseWriter, r *http.Request) {
		id, ok := assertion.FromContext(r.Context())
		if !ok || !slices.Contains(id.Groups, "admins") {
			http.Error(w, "admins only", http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "welcome,", id.PreferredUsername)
	}
	_ = admin
}

// Verify checks a token from anywhere, such as a WebSocket handshake or a
// job that received it from the web tier.
func ExampleVerifier_Verify() {
	var v *assertion.Verifier // from NewVerifier, once per process
	check := func(ctx context.Context, r *http.Request) (string, error) {
		id, err := v.Verify(ctx, strings.TrimSpace(r.Header.Get(assertion.DefaultHeader)))
		if err != nil {
			return "", err // 401
		}
		return id.User, nil
	}
	_ = check
}
