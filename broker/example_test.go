package broker_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/oidc-broker/oidc-broker/broker"
	"github.com/oidc-broker/oidc-broker/providers"
)

// A Go program embeds the broker: it builds it from a Config value, serves
// the broker's routes at /oauth2/ of its own mux, and puts its handlers
// behind access rules. New makes no network call: identity providers are
// discovered at the first sign-in.
func Example() {
	srv, err := broker.New(broker.Config{
		PublicURL: "https://app.example.com",
		Providers: []providers.Config{{
			ID: "corp", Name: "Corp SSO", Issuer: "https://sso.example.com",
			ClientID: "app", ClientSecret: "from-a-secret-store",
		}},
	}, broker.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.Handle("/oauth2/", srv.Handler())
	mux.Handle("/reports/", srv.Require(broker.AccessRule{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := broker.IdentityFrom(r.Context())
		fmt.Fprintf(w, "reports for %s\n", id.Name)
	})))

	// A browser that is not signed in is sent to the sign-in page, and
	// comes back to where it was going.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://app.example.com/reports/q3", nil))
	fmt.Println(rec.Code, rec.Header().Get("Location"))
	// Output: 302 /oauth2/sign_in?rd=%2Freports%2Fq3
}

// Require protects one handler with one rule, the same rules as the
// configuration's routes. An API client that is not signed in gets 401,
// with JSON that names the sign-in page.
func ExampleServer_Require() {
	srv, err := broker.New(broker.Config{Providers: []providers.Config{{
		ID: "corp", Issuer: "https://sso.example.com", ClientID: "app", ClientSecret: "s3cret"}}}, broker.Options{})
	if err != nil {
		log.Fatal(err)
	}
	admins := srv.Require(broker.AccessRule{
		Groups:    broker.GroupCondition{OneOf: []string{"admins"}},
		Providers: []string{"corp"},
	})
	h := admins(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "admin console")
	}))

	req := httptest.NewRequest(http.MethodPost, "/admin/users", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	fmt.Print(rec.Body.String())
	// Output:
	// 401 Cookie realm="oidc-broker"
	// {"error":"not signed in","sign_in_url":"http://example.com/oauth2/sign_in?rd=%2Fadmin%2Fusers"}
}

// IdentityFrom reads the signed-in user in a handler behind Require or
// Protect. On a public route nobody may be signed in.
func ExampleIdentityFrom() {
	srv, err := broker.New(broker.Config{Providers: []providers.Config{{
		ID: "corp", Issuer: "https://sso.example.com", ClientID: "app", ClientSecret: "s3cret"}}}, broker.Options{})
	if err != nil {
		log.Fatal(err)
	}
	greet := srv.Require(broker.AccessRule{Public: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := broker.IdentityFrom(r.Context()); ok {
			fmt.Fprintf(w, "Hello, %s (%s)\n", id.Name, id.User())
			return
		}
		fmt.Fprintln(w, "Hello, guest")
	}))
	rec := httptest.NewRecorder()
	greet.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Print(rec.Body.String())
	// Output: Hello, guest
}

// Reload swaps providers and rules in a running broker; sessions survive.
// An invalid configuration is refused and the running one stays.
func ExampleServer_Reload() {
	cfg := broker.Config{Providers: []providers.Config{{
		ID: "corp", Issuer: "https://sso.example.com", ClientID: "app", ClientSecret: "s3cret"}}}
	srv, err := broker.New(cfg, broker.Options{})
	if err != nil {
		log.Fatal(err)
	}
	next := cfg
	next.Providers = append(next.Providers, providers.Config{ID: "partner", Issuer: "not a URL", ClientID: "app", ClientSecret: "s"})
	fmt.Println(srv.Reload(next))
	fmt.Println(len(srv.Registry().All()), "provider")
	// Output:
	// providers[1].issuer: "not a URL" must be an https URL (http only for loopback hosts)
	// 1 provider
}
