package demo

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

func TestTokenEndpointAuthMethods(t *testing.T) {
	srv := startIdP(t, IdPConfig{})

	// Accepted: each client with its registered method, through a full flow.
	accepted := []struct {
		client, secret string
		style          oauth2.AuthStyle
	}{
		{"web", webSecret, oauth2.AuthStyleInHeader},
		{"post", "post-secret", oauth2.AuthStyleInParams},
		{"public", "", oauth2.AuthStyleInParams},
	}
	for _, tt := range accepted {
		t.Run("accepts "+tt.client, func(t *testing.T) {
			_, cb := codeFlow(t, srv, newRP(t, srv, tt.client, tt.secret, tt.style, "openid"), "alice")
			if cb.Query().Has("iss") {
				t.Errorf("iss sent without AuthorizationResponseIss: %s", cb)
			}
		})
	}

	// Refused: the wrong method, with a real code, through the rp.
	refused := []struct {
		client, secret string
		style          oauth2.AuthStyle
	}{
		{"web", webSecret, oauth2.AuthStyleInParams},
		{"post", "post-secret", oauth2.AuthStyleInHeader},
		{"public", "", oauth2.AuthStyleInHeader},
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.client, func(t *testing.T) {
			relp := newRP(t, srv, tt.client, tt.secret, tt.style, "openid")
			verifier := oauth2.GenerateVerifier()
			cb := login(t, srv, rp.AuthURL("s", relp, rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier))), "alice", DemoPassword)
			_, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), cb.Query().Get("code"), relp, rp.WithCodeVerifier(verifier))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
				t.Fatalf("CodeExchange error %v, want 401 invalid_client", err)
			}
		})
	}

	// Refused before the code is looked at: raw requests.
	raw := []struct {
		name       string
		form       url.Values
		user, pass string // Basic auth when user != ""
	}{
		{"basic client, secret in form", url.Values{"client_id": {"web"}, "client_secret": {webSecret}}, "", ""},
		{"basic client, basic and form secret", url.Values{"client_secret": {webSecret}}, "web", webSecret},
		{"post client, no secret", url.Values{"client_id": {"post"}}, "", ""},
		{"public client, form secret", url.Values{"client_id": {"public"}, "client_secret": {"x"}, "code_verifier": {"v"}}, "", ""},
		{"public client, no code_verifier", url.Values{"client_id": {"public"}}, "", ""},
		{"no client", url.Values{}, "", ""},
		{"unknown client", url.Values{"client_id": {"nobody"}, "client_secret": {"x"}}, "", ""},
		{"form and header disagree", url.Values{"client_id": {"post"}}, "web", webSecret},
		{"client assertion", url.Values{"client_id": {"web"}, "client_assertion": {"x.y.z"},
			"client_assertion_type": {oidc.ClientAssertionTypeJWTAssertion}}, "", ""},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("grant_type", "authorization_code")
			tt.form.Set("code", "irrelevant")
			tt.form.Set("redirect_uri", redirectURI)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			var e struct{ Error string }
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != http.StatusUnauthorized || e.Error != "invalid_client" {
				t.Errorf("status %d body %s, want 401 invalid_client", resp.StatusCode, body)
			}
		})
	}
}

func TestAuthorizationResponseIss(t *testing.T) {
	srv := startIdP(t, IdPConfig{AuthorizationResponseIss: true})

	resp, body := get(t, srv.Client(), srv.URL+"/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: status %d, %v", resp.StatusCode, err)
	}
	if doc[issParameterSupported] != true || doc["issuer"] != srv.URL {
		t.Errorf("discovery: %s = %v, issuer %v", issParameterSupported, doc[issParameterSupported], doc["issuer"])
	}

	relp := newRP(t, srv, "web", webSecret, oauth2.AuthStyleInHeader, "openid")
	_, cb := codeFlow(t, srv, relp, "alice")
	if got := cb.Query().Get("iss"); got != srv.URL {
		t.Errorf("success redirect iss = %q, want %q", got, srv.URL)
	}

	// An error response: prompt=none cannot be satisfied without a session.
	resp, _ = get(t, noRedirects(srv), rp.AuthURL("s", relp, rp.AuthURLOpt(rp.WithPromptURLParam("none"))))
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("prompt=none: status %d, %v", resp.StatusCode, err)
	}
	if loc.Query().Get("error") != "login_required" || loc.Query().Get("iss") != srv.URL || loc.Query().Get("state") != "s" {
		t.Errorf("error redirect %s: want error=login_required, iss and state", loc)
	}

	// The redirect to the login page is not an authorization response.
	id := startLogin(t, srv, rp.AuthURL("s", relp))
	if id == "" {
		t.Error("no auth request ID")
	}
}
