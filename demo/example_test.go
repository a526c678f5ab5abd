package demo_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/oidc-broker/oidc-broker/demo"
)

// A demo IdP on a test server: the issuer is only known once the server runs, so the handler
// is set right after it starts and before any request.
func ExampleNewIdP() {
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()

	var err error
	handler, err = demo.NewIdP(demo.IdPConfig{
		Issuer: srv.URL,
		Title:  "Demo IdP A (Acme)",
		Users:  demo.DemoUsers("acme"),
		Clients: []demo.Client{{
			ID:           "broker",
			Secret:       "broker-secret",
			RedirectURIs: []string{"http://127.0.0.1:4180/oauth2/callback"},
			AuthMethod:   demo.AuthMethodPost,
		}},
		AuthorizationResponseIss: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	resp, err := srv.Client().Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
		Iss    bool   `json:"authorization_response_iss_parameter_supported"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	fmt.Println(doc.Issuer == srv.URL, doc.Iss)
	// Output: true true
}

func ExampleDemoUsers() {
	for _, u := range demo.DemoUsers("acme") {
		fmt.Println(u.ID, u.Username, u.Password, u.Email, u.EmailVerified, u.Groups)
	}
	// Output:
	// acme-alice alice demo alice@acme.example true [admins engineering]
	// acme-bob bob demo bob@acme.example true [engineering]
	// acme-carol carol demo carol@acme.example false []
}
