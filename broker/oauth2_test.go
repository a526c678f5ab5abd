package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
)

// githubLike is a plain OAuth2 server in the manner of GitHub: no ID token,
// a user API with a numeric id. It approves every authorization at once and
// checks the client secret, the redirect URI and PKCE.
type githubLike struct {
	*httptest.Server
	mu    sync.Mutex
	codes map[string]authGrant // code → grant
	nonce bool                 // a nonce was sent to /authorize
}

type authGrant struct{ challenge, redirectURI string }

func newGithubLike(t *testing.T) *githubLike {
	g := &githubLike{codes: map[string]authGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "hub-client" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		code := randomToken()
		g.mu.Lock()
		g.codes[code] = authGrant{q.Get("code_challenge"), q.Get("redirect_uri")}
		g.nonce = g.nonce || q.Has("nonce")
		g.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		g.mu.Lock()
		grant, ok := g.codes[r.PostFormValue("code")]
		delete(g.codes, r.PostFormValue("code"))
		g.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case id != "hub-client" || secret != "hub-secret":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		case !ok || grant.redirectURI != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != grant.challenge:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		default:
			_, _ = w.Write([]byte(`{"access_token":"gho_abc","token_type":"bearer","scope":"read:user"}`))
		}
	})
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gho_abc" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"login": "octocat", "id": 9007199254740993, "name": "The Octocat",
			"email": "octocat@github.example"})
	})
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *githubLike) provider() providers.Config {
	return providers.Config{ID: "hub", Name: "Hub", Type: providers.TypeOAuth2, ClientID: "hub-client", ClientSecret: "hub-secret",
		AuthorizationEndpoint: g.URL + "/login/oauth/authorize", TokenEndpoint: g.URL + "/login/oauth/access_token",
		UserinfoEndpoint: g.URL + "/user", Scopes: []string{"read:user"},
		Claims: providers.ClaimsConfig{Subject: "id", Username: "login", StaticGroups: []string{"hub-users"}}}
}

func TestPlainOAuth2Provider(t *testing.T) {
	hub := newGithubLike(t)
	e := newEnv(t, withConfig(func(c *Config) { c.Providers = append(c.Providers, hub.provider()) }))
	cb := e.startLogin(e.client, "hub", "", "/after")
	resp := e.get(cb.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/after" {
		t.Fatalf("callback: %d %s\n%s", resp.StatusCode, body(resp), e.logs.String())
	}
	_, v := e.appView(e.client, "/", nil)
	want := map[string]string{HeaderUser: "hub:9007199254740993", HeaderPreferredUsername: "octocat", HeaderGroups: "hub-users", HeaderProvider: "hub"}
	for k, w := range want {
		if v.Headers[k] != w {
			t.Errorf("%s = %q, want %q", k, v.Headers[k], w)
		}
	}
	if _, ok := v.Headers[HeaderEmail]; ok {
		t.Error("an unverified email from an OAuth2 API was relayed")
	}
	if hub.nonce {
		t.Error("a nonce was sent to a plain OAuth2 server")
	}
	// The same protections as for OpenID providers: the state is single-use
	// and bound to the provider.
	if resp := e.get(cb.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d", resp.StatusCode)
	}
	other := e.startLogin(newBrowser(), "hub", "", "/")
	q := other.Query()
	e.client = newBrowser()
	alpha := e.startLogin(e.client, "alpha", "alice", "/")
	q.Set("state", alpha.Query().Get("state"))
	e.refused(e.get(e.broker.URL+"/oauth2/callback/hub?"+q.Encode()), http.StatusBadRequest, "state belongs to provider alpha")
}

func TestPlainOAuth2ProviderConfig(t *testing.T) {
	err := all.Types().Validate(providers.Config{ID: "hub", Type: providers.TypeOAuth2, ClientID: "c", ClientSecret: "s",
		Claims: providers.ClaimsConfig{Source: providers.SourceIDToken}})
	for _, want := range []string{"authorization_endpoint: is required", "token_endpoint: is required", "userinfo_endpoint: is required",
		"claims.source: a plain OAuth2 provider has no ID token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	err = all.Types().Validate(providers.Config{ID: "x", Type: "saml", Issuer: "https://x", ClientID: "c", ClientSecret: "s"})
	if err == nil || !strings.Contains(err.Error(), `type: "saml" is not one of oidc, oauth2`) {
		t.Errorf("unknown type: %v", err)
	}
}
