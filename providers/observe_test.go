package providers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// callLog collects what Options.Observe reports.
type callLog struct {
	mu    sync.Mutex
	calls []IdPCall
}

func (l *callLog) observe(c IdPCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// seen lists the reported calls as "provider endpoint status".
func (l *callLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.calls {
		s := c.Provider + " " + c.Endpoint + " " + http.StatusText(c.Status)
		if c.Err != nil {
			s += " failed"
		}
		out = append(out, s)
	}
	return out
}

// TestObserveOIDCCalls: discovery, token, JWKS and userinfo are told apart
// by URL, with their status; a failed request is reported with its error.
func TestObserveOIDCCalls(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	f := newFakeOP(t)
	f.set(func(o *fakeOP) {
		o.userinfo = map[string]any{"sub": "user-1"}
		o.token = func(form url.Values) (int, any) {
			if form.Get("refresh_token") == "refused" {
				return http.StatusBadRequest, map[string]any{"error": "invalid_grant"}
			}
			return http.StatusOK, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": f.signed(t, f.idClaims(now, ""), "JWT")}
		}
	})
	var log callLog
	p, err := testTypes.Open(Config{ID: "op", Issuer: f.srv.URL, ClientID: "client-1", ClientSecret: "secret-1"},
		Options{Logger: quiet, Observe: log.observe})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.(Refresher).Refresh(ctx, RefreshRequest{RefreshToken: "rt-1", Subject: "user-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.(Refresher).Refresh(ctx, RefreshRequest{RefreshToken: "refused", Subject: "user-1"}); err == nil {
		t.Fatal("the refused refresh succeeded")
	}
	want := []string{"op discovery OK", "op token OK", "op jwks OK", "op userinfo OK", "op token Bad Request"}
	if got := log.seen(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	for _, c := range log.calls {
		if c.Duration <= 0 {
			t.Errorf("%s %s: duration %v", c.Provider, c.Endpoint, c.Duration)
		}
	}

	// The IdP goes away: the failure is reported, without a status.
	f.srv.Close()
	log = callLog{}
	if _, err := p.(Refresher).Refresh(ctx, RefreshRequest{RefreshToken: "rt-1", Subject: "user-1"}); err == nil {
		t.Fatal("refresh against a closed IdP succeeded")
	}
	if got := log.seen(); !slices.Equal(got, []string{"op token  failed"}) {
		t.Errorf("calls %q", got)
	}
}

// TestObserveOAuth2Calls: a plain OAuth2 provider reports its token
// endpoint and user API; without Observe its client is the configured one.
func TestObserveOAuth2Calls(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/token":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "gho_x", "token_type": "bearer"})
		case "/user":
			_ = json.NewEncoder(w).Encode(map[string]any{"id": 7, "login": "octo"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := Config{ID: "hub", Type: TypeOAuth2, ClientID: "c", ClientSecret: "s", AuthorizationEndpoint: srv.URL + "/authorize",
		TokenEndpoint: srv.URL + "/token", UserinfoEndpoint: srv.URL + "/user?fields=all", Claims: ClaimsConfig{Subject: "id"}}
	var log callLog
	p, err := testTypes.Open(cfg, Options{Logger: quiet, Observe: log.observe})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Exchange(context.Background(), Callback{Params: url.Values{"code": {"c-1"}}, Verifier: "v", RedirectURI: "https://b/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Subject != "7" {
		t.Errorf("identity %+v", res.Identity)
	}
	if got, want := log.seen(), []string{"hub token OK", "hub userinfo OK"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}

	hc := &http.Client{Timeout: 7 * time.Second}
	plain, err := testTypes.Open(cfg, Options{Logger: quiet, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	// Only the body guard (idpbodies.go) between the provider and the
	// configured client.
	if got := plain.(*oauth2Provider).hc; got.Timeout != hc.Timeout || got.Transport != guardBodies(hc.Transport) {
		t.Error("without Observe the provider does not use the configured client")
	}
}
