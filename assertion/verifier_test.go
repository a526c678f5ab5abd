package assertion_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oidc-broker/oidc-broker/assertion"
)

const (
	issuer   = "https://auth.example.com"
	audience = "https://app.example.com"
)

// testKey is a private signing key with its kid and algorithm.
type testKey struct{ jwk jose.JSONWebKey }

func newKey(t testing.TB, alg jose.SignatureAlgorithm) testKey {
	t.Helper()
	var priv any
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return testKey{k}
}

func (k testKey) public() jose.JSONWebKey { return k.jwk.Public() }

// sign makes a compact JWT of claims (any JSON value) with k.
func (k testKey) sign(t testing.TB, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.jwk.Algorithm), Key: k.jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer serves a key set that tests change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []jose.JSONWebKey
	cacheControl string
	status       int
	fetches      atomic.Int32
	conditional  atomic.Int32 // requests with If-None-Match
}

func newJWKSServer(t *testing.T, keys ...testKey) *jwksServer {
	t.Helper()
	s := &jwksServer{cacheControl: "public, max-age=300", status: http.StatusOK}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.public())
	}
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != http.StatusOK {
		w.WriteHeader(s.status)
		return
	}
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: s.keys})
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	if r.Header.Get("If-None-Match") != "" {
		s.conditional.Add(1)
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", s.cacheControl)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newVerifier(t *testing.T, s *jwksServer, clk *clock) *assertion.Verifier {
	t.Helper()
	v, err := assertion.NewVerifier(t.Context(), assertion.Config{JWKSURL: s.URL, Issuer: issuer, Audience: audience,
		HTTPClient: s.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// identity is what the broker would sign at now.
func identity(now time.Time) assertion.Claims {
	return assertion.Claims{Issuer: issuer, Audience: []string{audience}, User: "kc:248289761001", Provider: "kc",
		Email: "jane@example.com", Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops"},
		IssuedAt: now, Expiry: now.Add(5 * time.Minute)}
}

func TestVerifyEachAlgorithm(t *testing.T) {
	for _, alg := range assertion.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k := newKey(t, alg)
			s := newJWKSServer(t, newKey(t, jose.ES256), k)
			clk := &clock{now: t0}
			v := newVerifier(t, s, clk)
			want := identity(t0)
			got, err := v.Verify(t.Context(), k.sign(t, want))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(utc(*got), utc(want)) {
				t.Errorf("claims\n got %+v\nwant %+v", utc(*got), utc(want))
			}
		})
	}
}

func utc(c assertion.Claims) assertion.Claims {
	c.IssuedAt, c.Expiry = c.IssuedAt.UTC(), c.Expiry.UTC()
	return c
}

func TestVerifyRefusals(t *testing.T) {
	k := newKey(t, jose.ES256)
	other := newKey(t, jose.ES256)
	rsaKey := newKey(t, jose.RS256)
	s := newJWKSServer(t, k, rsaKey)
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	good := k.sign(t, identity(t0))
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	with := func(f func(m map[string]any)) string {
		b, _ := json.Marshal(identity(t0))
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		return k.sign(t, m)
	}
	hs256 := func() string {
		// HS256 "signed" with the public key's JSON, the classic confusion attack.
		pub, _ := json.Marshal(k.public())
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: pub, KeyID: k.jwk.KeyID}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jwt.Signed(sg).Claims(identity(t0)).Serialize()
		return tok
	}
	// The payload, signed by k, re-labelled as another algorithm.
	relabel := func(alg string) string {
		return b64([]byte(`{"alg":"`+alg+`","kid":"`+rsaKey.jwk.KeyID+`"}`)) + "." + parts[1] + "." + parts[2]
	}

	cases := []struct{ name, token, want string }{
		{"payload tampered", parts[0] + "." + b64([]byte(`{"iss":"`+issuer+`","aud":"`+audience+`","sub":"kc:admin","exp":9999999999}`)) + "." + parts[2], "cryptographic"},
		{"signature tampered", parts[0] + "." + parts[1] + "." + flip(parts[2]), "cryptographic"},
		{"signed by a key the broker does not publish", other.sign(t, identity(t0)), "unknown key"},
		{"wrong aud", with(func(m map[string]any) { m["aud"] = "https://other-app.example.com" }), "audience"},
		{"no aud", with(func(m map[string]any) { delete(m, "aud") }), "audience"},
		{"wrong iss", with(func(m map[string]any) { m["iss"] = "https://evil.example.com" }), "issuer"},
		{"expired", with(func(m map[string]any) { m["exp"] = t0.Add(-time.Minute).Unix() }), "expired"},
		{"exp missing", with(func(m map[string]any) { delete(m, "exp") }), "exp is missing"},
		{"sub missing", with(func(m map[string]any) { delete(m, "sub") }), "sub is missing"},
		{"iat in the future", with(func(m map[string]any) { m["iat"] = t0.Add(2 * time.Minute).Unix() }), "future"},
		{"nbf in the future", with(func(m map[string]any) { m["nbf"] = t0.Add(2 * time.Minute).Unix() }), "not valid yet"},
		{"alg none", b64([]byte(`{"alg":"none","kid":"`+k.jwk.KeyID+`"}`)) + "." + parts[1] + ".", "algorithm"},
		{"HS256 with the public key", hs256(), "algorithm"},
		{"RS256 header on an ES256 signature", relabel("RS256"), "cryptographic"},
		{"ES256 header naming an RS256 key", b64([]byte(`{"alg":"ES256","kid":"`+rsaKey.jwk.KeyID+`"}`)) + "." + parts[1] + "." + parts[2], "is for RS256"},
		{"no kid", b64([]byte(`{"alg":"ES256"}`)) + "." + parts[1] + "." + parts[2], "names no key"},
		{"not a JWT", "hello", "not a signed JWT"},
		{"empty", "", "not a signed JWT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), c.token)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to mention %q", err, c.want)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		if _, err := v.Verify(t.Context(), good); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("leeway", func(t *testing.T) {
		clk.Add(5*time.Minute + 20*time.Second) // 20s past exp, within the 30s leeway
		defer clk.Add(-5*time.Minute - 20*time.Second)
		if _, err := v.Verify(t.Context(), good); err != nil {
			t.Fatal(err)
		}
	})
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestRotationFetchesTheNewKeyOnce(t *testing.T) {
	old, next := newKey(t, jose.ES256), newKey(t, jose.EdDSA)
	s := newJWKSServer(t, old)
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	if _, err := v.Verify(t.Context(), old.sign(t, identity(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	// The broker publishes the new key and, a little later, signs with it.
	s.set(old, next)
	clk.Add(assertion.DefaultMinRefreshInterval)
	before := s.fetches.Load()
	for range 5 {
		if _, err := v.Verify(t.Context(), next.sign(t, identity(clk.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.fetches.Load() - before; got != 1 {
		t.Errorf("%d key set fetches for the new key, want 1", got)
	}
	// Tokens of the old key, still published, keep working.
	if _, err := v.Verify(t.Context(), old.sign(t, identity(clk.Now()))); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKeyIdsAreRateLimited(t *testing.T) {
	k := newKey(t, jose.ES256)
	s := newJWKSServer(t, k)
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	clk.Add(time.Hour)
	before := s.fetches.Load()
	// Tokens signed by keys nobody publishes, each with a new kid.
	for range 20 {
		if _, err := v.Verify(t.Context(), newKey(t, jose.ES256).sign(t, identity(clk.Now()))); err == nil {
			t.Fatal("accepted a token of an unknown key")
		}
		clk.Add(time.Second)
	}
	if got := s.fetches.Load() - before; got != 1 {
		t.Errorf("%d key set fetches for 20 unknown kids within 20s, want 1", got)
	}
	clk.Add(assertion.DefaultMinRefreshInterval)
	_, _ = v.Verify(t.Context(), newKey(t, jose.ES256).sign(t, identity(clk.Now())))
	if got := s.fetches.Load() - before; got != 2 {
		t.Errorf("%d key set fetches after the interval, want 2", got)
	}
}

func TestRemovedKeyIsRefusedAfterMaxAge(t *testing.T) {
	old, next := newKey(t, jose.ES256), newKey(t, jose.ES256)
	s := newJWKSServer(t, next, old)
	s.cacheControl = "public, max-age=60"
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	s.set(next) // the old key is retired
	clk.Add(59 * time.Second)
	if _, err := v.Verify(t.Context(), old.sign(t, identity(clk.Now()))); err != nil {
		t.Fatalf("within max-age: %v", err)
	}
	clk.Add(2 * time.Second)
	if _, err := v.Verify(t.Context(), old.sign(t, identity(clk.Now()))); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("after max-age: %v, want unknown key", err)
	}
	if _, err := v.Verify(t.Context(), next.sign(t, identity(clk.Now()))); err != nil {
		t.Fatal(err)
	}
}

func TestStaleKeysKeepWorkingWhenTheBrokerIsDown(t *testing.T) {
	k := newKey(t, jose.ES256)
	s := newJWKSServer(t, k)
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	s.mu.Lock()
	s.status = http.StatusServiceUnavailable
	s.mu.Unlock()
	clk.Add(time.Hour)
	before := s.fetches.Load()
	for range 3 {
		if _, err := v.Verify(t.Context(), k.sign(t, identity(clk.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches, want 1 (then rate-limited)", got)
	}
}

func TestConditionalRefresh(t *testing.T) {
	k := newKey(t, jose.ES256)
	s := newJWKSServer(t, k)
	clk := &clock{now: t0}
	v := newVerifier(t, s, clk)
	clk.Add(10 * time.Minute)
	if _, err := v.Verify(t.Context(), k.sign(t, identity(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if s.fetches.Load() != 2 || s.conditional.Load() != 1 {
		t.Errorf("fetches %d, conditional %d; want a second, conditional fetch", s.fetches.Load(), s.conditional.Load())
	}
}

func TestConcurrentVerifyDuringRotation(t *testing.T) {
	keys := []testKey{newKey(t, jose.ES256), newKey(t, jose.ES256), newKey(t, jose.ES256)}
	s := newJWKSServer(t, keys...)
	s.cacheControl = "no-cache"
	v, err := assertion.NewVerifier(t.Context(), assertion.Config{JWKSURL: s.URL, Issuer: issuer, Audience: audience,
		HTTPClient: s.Client(), MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, len(keys))
	for i, k := range keys {
		tokens[i] = k.sign(t, identity(time.Now()))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := v.Verify(context.Background(), tokens[(g+i)%len(tokens)]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewVerifierChecksItsConfig(t *testing.T) {
	s := newJWKSServer(t, newKey(t, jose.ES256))
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	cases := []struct {
		name string
		cfg  assertion.Config
		want string
	}{
		{"nothing", assertion.Config{}, "JWKSURL is required"},
		{"no audience", assertion.Config{JWKSURL: s.URL, Issuer: issuer}, "Audience is required"},
		{"no issuer", assertion.Config{JWKSURL: s.URL, Audience: audience}, "Issuer is required"},
		{"huge leeway", assertion.Config{JWKSURL: s.URL, Issuer: issuer, Audience: audience, Leeway: time.Hour}, "Leeway"},
		{"key set not found", assertion.Config{JWKSURL: notFound.URL, Issuer: issuer, Audience: audience}, "status 404"},
		{"key set unreachable", assertion.Config{JWKSURL: "http://127.0.0.1:1/jwks", Issuer: issuer, Audience: audience}, "key set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := assertion.NewVerifier(t.Context(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewVerifier = %v, %v; want an error mentioning %q", v, err, c.want)
			}
		})
	}
}

func TestMiddleware(t *testing.T) {
	k := newKey(t, jose.ES256)
	s := newJWKSServer(t, k)
	v, err := assertion.NewVerifier(t.Context(), assertion.Config{JWKSURL: s.URL, Issuer: issuer, Audience: audience, HTTPClient: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	var seen *assertion.Claims
	h := v.Middleware("")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := assertion.FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
		}
		seen = c
	}))
	for _, c := range []struct {
		name, header, token string
		want                int
	}{
		{"valid", assertion.DefaultHeader, k.sign(t, identity(time.Now())), http.StatusOK},
		{"missing", "", "", http.StatusUnauthorized},
		{"another header", "X-Other", k.sign(t, identity(time.Now())), http.StatusUnauthorized},
		{"expired", assertion.DefaultHeader, k.sign(t, identity(time.Now().Add(-time.Hour))), http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen = nil
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.header != "" {
				req.Header.Set(c.header, c.token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			if (seen != nil) != (c.want == http.StatusOK) {
				t.Errorf("handler reached: %v", seen != nil)
			}
			if seen != nil && seen.User != "kc:248289761001" {
				t.Errorf("user %q", seen.User)
			}
		})
	}
	if _, ok := assertion.FromContext(context.Background()); ok {
		t.Error("FromContext of a bare context")
	}
}

func TestClaimsJSON(t *testing.T) {
	b, err := json.Marshal(identity(t0))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"https://auth.example.com","aud":"https://app.example.com","sub":"kc:248289761001","provider":"kc",` +
		`"email":"jane@example.com","email_verified":true,"name":"Jane Doe","preferred_username":"jane","groups":["staff","ops"],` +
		`"iat":1795435200,"exp":1795435500}`
	if string(b) != want {
		t.Errorf("marshal\n got %s\nwant %s", b, want)
	}
	var c assertion.Claims
	if err := json.Unmarshal([]byte(`{"sub":"a:b","email":"x@y","aud":["p","q"],"groups_incomplete":true}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "" || len(c.Audience) != 2 || !c.GroupsIncomplete || !c.Expiry.IsZero() {
		t.Errorf("unmarshal: %+v (an email without email_verified must be dropped)", c)
	}
}

// TestOptional: public pages need no assertion, so a request without one
// reaches the app anonymously; a bad one is still refused, and a valid one
// carries its identity.
func TestOptional(t *testing.T) {
	k := newKey(t, jose.ES256)
	s := newJWKSServer(t, k)
	v, err := assertion.NewVerifier(t.Context(), assertion.Config{JWKSURL: s.URL, Issuer: issuer, Audience: audience, HTTPClient: s.Client()})
	if err != nil {
		t.Fatal(err)
	}
	h := v.Optional("")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := assertion.FromContext(r.Context()); ok {
			fmt.Fprint(w, c.User)
			return
		}
		fmt.Fprint(w, "anonymous")
	}))
	for _, c := range []struct {
		name   string
		header http.Header
		want   int
		body   string
	}{
		{"none: anonymous", http.Header{}, http.StatusOK, "anonymous"},
		{"valid", http.Header{assertion.DefaultHeader: {k.sign(t, identity(time.Now()))}}, http.StatusOK, "kc:248289761001"},
		{"forged", http.Header{assertion.DefaultHeader: {"forged"}}, http.StatusUnauthorized, ""},
		{"empty", http.Header{assertion.DefaultHeader: {""}}, http.StatusUnauthorized, ""},
		{"expired", http.Header{assertion.DefaultHeader: {k.sign(t, identity(time.Now().Add(-time.Hour)))}}, http.StatusUnauthorized, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header = c.header
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.want || (c.body != "" && w.Body.String() != c.body) {
				t.Errorf("status %d body %q, want %d %q", w.Code, w.Body.String(), c.want, c.body)
			}
		})
	}
}
