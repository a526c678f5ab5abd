package providers

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fakeOP is a minimal OpenID Provider for the provider's own tests:
// discovery, a JWKS with one RSA key, and a token and a userinfo endpoint
// whose answers a test scripts.
type fakeOP struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	mu          sync.Mutex
	endSession  string                      // end_session_endpoint, a path or an absolute URL; "" for none
	token       func(url.Values) (int, any) // the token endpoint's answer
	userinfo    map[string]any              // nil: no userinfo endpoint
	tokenForms  []url.Values                // what the token endpoint received
	tokenHeader []http.Header               // and with which headers
}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	testKeyOnce.Do(func() { testKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	f := &fakeOP{key: testKey, endSession: "/logout"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOP) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		doc := map[string]any{"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/auth",
			"token_endpoint": f.srv.URL + "/token", "jwks_uri": f.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}}
		if strings.Contains(f.endSession, ":") { // an absolute URL
			doc["end_session_endpoint"] = f.endSession
		} else if f.endSession != "" {
			doc["end_session_endpoint"] = f.srv.URL + f.endSession
		}
		if f.userinfo != nil {
			doc["userinfo_endpoint"] = f.srv.URL + "/userinfo"
		}
		_ = json.NewEncoder(w).Encode(doc)
	case "/keys":
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: f.key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	case "/token":
		_ = r.ParseForm()
		f.tokenForms = append(f.tokenForms, r.PostForm)
		f.tokenHeader = append(f.tokenHeader, r.Header.Clone())
		status, body := f.token(r.PostForm)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	case "/userinfo":
		_ = json.NewEncoder(w).Encode(f.userinfo)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeOP) set(fn func(*fakeOP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// provider is an oidc provider of this OP, with the clock now.
func (f *fakeOP) provider(t *testing.T, now func() time.Time, edit ...func(*Config)) Provider {
	t.Helper()
	cfg := Config{ID: "op", Issuer: f.srv.URL, ClientID: "client-1", ClientSecret: "secret-1"}
	for _, e := range edit {
		e(&cfg)
	}
	p, err := testTypes.Open(cfg, Options{Logger: quiet, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signed signs claims with the OP's key (kid k1, RS256) and the typ header.
func (f *fakeOP) signed(t *testing.T, claims map[string]any, typ string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// logoutClaims are the claims of a valid logout token at now.
func (f *fakeOP) logoutClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": f.srv.URL, "aud": "client-1", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "jti-1", "sid": "sid-1", "sub": "user-1",
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	f := newFakeOP(t)
	now := time.Now()
	p := f.provider(t, func() time.Time { return now }).(LogoutTokenVerifier)
	ctx := context.Background()

	got, err := p.VerifyLogoutToken(ctx, f.signed(t, f.logoutClaims(now), "logout+jwt"))
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if got.SID != "sid-1" || got.Subject != "user-1" || got.JTI != "jti-1" || got.IssuedAt.Unix() != now.Unix() {
		t.Errorf("claims %+v", got)
	}

	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	foreign := func(c map[string]any) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: otherKey, KeyID: "k1"}}, nil)
		b, _ := json.Marshal(c)
		o, _ := s.Sign(b)
		out, _ := o.CompactSerialize()
		return out
	}
	cases := []struct {
		name  string
		edit  func(map[string]any)
		typ   string
		token func(map[string]any) string // instead of signing with the OP's key
		want  error
	}{
		{name: "signed by another key", token: foreign, want: ErrLogoutTokenSignature},
		{name: "signature broken", token: func(c map[string]any) string {
			s := f.signed(t, c, "")
			return s[:len(s)-4] + "AAAA"
		}, want: ErrLogoutTokenSignature},
		{name: "alg none", token: func(c map[string]any) string {
			b, _ := json.Marshal(c)
			return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + "."
		}, want: ErrLogoutTokenMalformed},
		{name: "not a JWT", token: func(map[string]any) string { return "garbage" }, want: ErrLogoutTokenMalformed},
		{name: "typ of an access token", typ: "at+jwt", want: ErrLogoutTokenType},
		{name: "wrong iss", edit: func(c map[string]any) { c["iss"] = "https://evil.example" }, want: ErrLogoutTokenIssuer},
		{name: "iss with a trailing slash", edit: func(c map[string]any) { c["iss"] = f.srv.URL + "/" }, want: ErrLogoutTokenIssuer},
		{name: "wrong aud", edit: func(c map[string]any) { c["aud"] = "someone-else" }, want: ErrLogoutTokenAudience},
		{name: "iat missing", edit: func(c map[string]any) { delete(c, "iat") }, want: ErrLogoutTokenIssuedAt},
		{name: "iat in the future", edit: func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }, want: ErrLogoutTokenIssuedAt},
		{name: "iat too old", edit: func(c map[string]any) {
			c["iat"] = now.Add(-LogoutTokenMaxAge - 2*LogoutTokenLeeway).Unix()
			delete(c, "exp")
		}, want: ErrLogoutTokenIssuedAt},
		{name: "expired", edit: func(c map[string]any) { c["exp"] = now.Add(-2 * LogoutTokenLeeway).Unix() }, want: ErrLogoutTokenExpired},
		{name: "no events claim", edit: func(c map[string]any) { delete(c, "events") }, want: ErrLogoutTokenEvents},
		{name: "events without the logout event", edit: func(c map[string]any) { c["events"] = map[string]any{"other": map[string]any{}} }, want: ErrLogoutTokenEvents},
		{name: "logout event not an object", edit: func(c map[string]any) { c["events"] = map[string]any{BackChannelLogoutEvent: "yes"} }, want: ErrLogoutTokenEvents},
		{name: "nonce present", edit: func(c map[string]any) { c["nonce"] = "n" }, want: ErrLogoutTokenNonce},
		{name: "neither sid nor sub", edit: func(c map[string]any) { delete(c, "sid"); delete(c, "sub") }, want: ErrLogoutTokenSubject},
		{name: "jti missing", edit: func(c map[string]any) { delete(c, "jti") }, want: ErrLogoutTokenJTI},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := f.logoutClaims(now)
			if c.edit != nil {
				c.edit(claims)
			}
			raw := f.signed(t, claims, c.typ)
			if c.token != nil {
				raw = c.token(claims)
			}
			if _, err := p.VerifyLogoutToken(ctx, raw); !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}

	accepted := []struct {
		name string
		edit func(map[string]any)
		typ  string
	}{
		{"typ JWT", nil, "JWT"},
		{"typ application/logout+jwt", nil, "application/logout+jwt"},
		{"no typ", nil, ""},
		{"sid only", func(c map[string]any) { delete(c, "sub") }, "logout+jwt"},
		{"sub only", func(c map[string]any) { delete(c, "sid") }, "logout+jwt"},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, "logout+jwt"},
		{"aud an array", func(c map[string]any) { c["aud"] = []string{"other", "client-1"} }, "logout+jwt"},
		{"iat a little ahead (skew)", func(c map[string]any) { c["iat"] = now.Add(30 * time.Second).Unix() }, "logout+jwt"},
	}
	for _, c := range accepted {
		t.Run("accepted: "+c.name, func(t *testing.T) {
			claims := f.logoutClaims(now)
			if c.edit != nil {
				c.edit(claims)
			}
			if _, err := p.VerifyLogoutToken(ctx, f.signed(t, claims, c.typ)); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// TestEndSession: the request always carries id_token_hint, client_id,
// post_logout_redirect_uri and state, keeps the endpoint's own query, and
// must be posted when its URL would pass MaxEndSessionURL (an ID token with
// 150 groups).
func TestEndSession(t *testing.T) {
	f := newFakeOP(t)
	f.set(func(f *fakeOP) { f.endSession = "/logout?p=policy" })
	p := f.provider(t, time.Now).(EndSessioner)
	ctx := context.Background()
	const back = "https://auth.example.com/oauth2/signed_out/op"
	req, ok, err := p.EndSession(ctx, "the.id.token", back, "st")
	if err != nil || !ok {
		t.Fatalf("EndSession: %v %v", ok, err)
	}
	u, _ := url.Parse(req.URL())
	want := url.Values{"p": {"policy"}, "id_token_hint": {"the.id.token"}, "client_id": {"client-1"},
		"post_logout_redirect_uri": {back}, "state": {"st"}}
	if u.Scheme+"://"+u.Host+u.Path != f.srv.URL+"/logout" || u.Query().Encode() != want.Encode() || req.MustPost() {
		t.Errorf("URL %s, must post %v", req.URL(), req.MustPost())
	}

	// 150 groups make an ID token far too long for a URL: it is posted,
	// whole, to the endpoint (whose query stays in the form's action).
	var groups []string
	for i := range 150 {
		groups = append(groups, fmt.Sprintf("app-%03d-readers", i))
	}
	claims, _ := json.Marshal(map[string]any{"sub": "alice", "groups": groups})
	long := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	req, _, _ = p.EndSession(ctx, long, back, "st")
	if !req.MustPost() || req.Endpoint != f.srv.URL+"/logout?p=policy" || req.Params.Get("id_token_hint") != long ||
		req.Params.Get("client_id") != "client-1" || req.Params.Get("post_logout_redirect_uri") != back || req.Params.Get("state") != "st" {
		t.Errorf("long hint (%d bytes): must post %v, %s %v", len(long), req.MustPost(), req.Endpoint, req.Params)
	}
	// The limit is the whole URL's length.
	pad := strings.Repeat("x", MaxEndSessionURL-len(req.URL())+len(long))
	if req, _, _ := p.EndSession(ctx, pad, back, "st"); len(req.URL()) != MaxEndSessionURL || req.MustPost() {
		t.Errorf("a URL of %d bytes: must post %v", len(req.URL()), req.MustPost())
	}
	if req, _, _ := p.EndSession(ctx, pad+"x", back, "st"); !req.MustPost() {
		t.Errorf("a URL of %d bytes is not posted", len(req.URL()))
	}

	g := newFakeOP(t)
	g.set(func(f *fakeOP) { f.endSession = "" })
	if _, ok, err := g.provider(t, time.Now).(EndSessioner).EndSession(ctx, "t", "", ""); ok || err != nil {
		t.Errorf("without end_session_endpoint: ok %v err %v", ok, err)
	}
	h := newFakeOP(t)
	h.set(func(f *fakeOP) { f.endSession = "javascript:alert(1)" })
	if _, ok, err := h.provider(t, time.Now).(EndSessioner).EndSession(ctx, "t", "", ""); ok || err == nil {
		t.Errorf("a javascript: end_session_endpoint: ok %v err %v", ok, err)
	}
}
