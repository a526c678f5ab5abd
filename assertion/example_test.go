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

// An app with public pages: Optional lets requests without an assertion
// through anonymously, and Require guards the pages that need a user in
// some groups, here Flask-User's roles_required("starving", ["artist",
// "programmer"]): starving AND (artist OR programmer).
func ExampleRequire() {
	v, err := assertion.NewVerifier(context.Background(), assertion.Config{
		JWKSURL:  "https://auth.example.com/oauth2/jwks",
		Issuer:   "https://auth.example.com",
		Audience: "https://studio.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if id, ok := assertion.FromContext(r.Context()); ok {
			fmt.Fprintf(w, "Hello, %s\n", id.Name)
			return
		}
		fmt.Fprintln(w, "Hello, guest")
	})
	studio := assertion.Require(assertion.Rule{Each: [][]string{{"starving"}, {"artist", "programmer"}}})
	mux.Handle("/studio/", studio(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "the studio")
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", v.Optional(assertion.DefaultHeader)(mux)))
}

// Behind the broker only (nothing else can reach the app), the plain
// identity headers serve as well: FromHeaders reads them, and refuses
// malformed ones.
func ExampleFromHeaders() {
	trustHeaders := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := assertion.FromHeaders(r.Header)
			switch {
			case err != nil:
				http.Error(w, "invalid identity", http.StatusUnauthorized)
			case c != nil:
				next.ServeHTTP(w, r.WithContext(assertion.NewContext(r.Context(), c)))
			default:
				next.ServeHTTP(w, r) // anonymous: a public page
			}
		})
	}
	_ = trustHeaders
}
