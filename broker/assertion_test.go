package broker

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/testclock"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/providers"
)

func withAssertion(f func(*AssertionConfig)) envOption {
	return withConfig(func(c *Config) {
		c.Assertion.Enabled = true
		if f != nil {
			f(&c.Assertion)
		}
	})
}

// verifierFor verifies assertions of the env's broker for audience.
func (e *env) verifierFor(audience string) *assertion.Verifier {
	e.t.Helper()
	v, err := assertion.NewVerifier(e.t.Context(), assertion.Config{JWKSURL: e.broker.URL + "/oauth2/jwks",
		Issuer: e.broker.URL, Audience: audience, HTTPClient: e.broker.Client()})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestAssertionRelayedAndVerified(t *testing.T) {
	e := newEnv(t, withAssertion(nil))
	if !strings.Contains(e.logs.String(), "replicas need shared signing_keys") {
		t.Error("no warning about the generated key")
	}
	e.login("alpha", "alice", "/")
	_, v := e.appView(e.client, "/", nil)
	tok := v.Headers[assertion.DefaultHeader]
	if tok == "" {
		t.Fatalf("the app received no assertion: %v", v.Headers)
	}
	c, err := e.verifierFor(e.app.URL).Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "alpha:alpha-alice" || c.Provider != "alpha" || c.Email != "alice@alpha.example" ||
		c.PreferredUsername != "alice" || !slices.Equal(c.Groups, []string{"admins", "engineering"}) ||
		c.Issuer != e.broker.URL || !slices.Equal(c.Audience, []string{e.app.URL}) {
		t.Errorf("claims %+v", c)
	}
	if d := c.Expiry.Sub(c.IssuedAt); d != DefaultAssertionLifetime {
		t.Errorf("lifetime %s", d)
	}

	// Signed once, reused: the next request and forward-auth carry the same token.
	if _, v2 := e.appView(e.client, "/x", nil); v2.Headers[assertion.DefaultHeader] != tok {
		t.Error("a second request got a new token")
	}
	auth := e.get(e.broker.URL + "/oauth2/auth")
	if auth.StatusCode != http.StatusAccepted || auth.Header.Get(assertion.DefaultHeader) != tok {
		t.Errorf("forward-auth: %d, same token %v", auth.StatusCode, auth.Header.Get(assertion.DefaultHeader) == tok)
	}

	// A tampered token fails.
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), "alpha:alpha-alice", "alpha:alpha-bob", 1)
	bad := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	if _, err := e.verifierFor(e.app.URL).Verify(t.Context(), bad); err == nil {
		t.Error("a tampered token was accepted")
	}
	// Another app's audience fails.
	if _, err := e.verifierFor("https://other.example").Verify(t.Context(), tok); err == nil {
		t.Error("accepted for another audience")
	}
}

func TestAssertionOmitsUnverifiedEmail(t *testing.T) {
	e := newEnv(t, withAssertion(func(a *AssertionConfig) { a.Audience = "forward-auth-apps" }))
	e.login("beta", "carol", "/")
	// The proxied request names the upstream; forward-auth the configured audience.
	_, v := e.appView(e.client, "/", nil)
	if _, err := e.verifierFor(e.app.URL).Verify(t.Context(), v.Headers[assertion.DefaultHeader]); err != nil {
		t.Fatalf("proxied: %v", err)
	}
	auth := e.get(e.broker.URL + "/oauth2/auth")
	c, err := e.verifierFor("forward-auth-apps").Verify(t.Context(), auth.Header.Get(assertion.DefaultHeader))
	if err != nil {
		t.Fatalf("forward-auth: %v", err)
	}
	if c.User != "beta:beta-carol" || c.Email != "" {
		t.Errorf("claims %+v (carol's email is not verified)", c)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(auth.Header.Get(assertion.DefaultHeader), ".")[1])
	if strings.Contains(string(payload), "email") {
		t.Errorf("payload %s mentions an email", payload)
	}
}

func TestAssertionOffByDefault(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "alice", "/")
	req := http.Header{}
	req.Set(assertion.DefaultHeader, "forged")
	req["X_auth_request_assertion"] = []string{"forged"}
	_, v := e.appView(e.client, "/", req)
	if v.Headers[HeaderUser] == "" {
		t.Fatal("not signed in")
	}
	for k := range v.Headers {
		if strings.Contains(strings.ToLower(k), "assertion") {
			t.Errorf("the app received %s", k)
		}
	}
	if resp := e.get(e.broker.URL + "/oauth2/jwks"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/oauth2/jwks without the assertion: %d", resp.StatusCode)
	}
	// /.well-known/jwks.json is then the app's own path.
	if status, v := e.appView(e.client, "/.well-known/jwks.json", nil); status != http.StatusOK || v.Path != "/.well-known/jwks.json" {
		t.Errorf("/.well-known/jwks.json did not reach the app: %d %+v", status, v)
	}
}

func TestJWKSEndpoint(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := writeKey(t, dir, "k1.pem", "ec-pkcs8"), writeKey(t, dir, "k2.pem", "ed25519")
	e := newEnv(t, withAssertion(func(a *AssertionConfig) { a.SigningKeys = []string{k1, k2} }))
	if strings.Contains(e.logs.String(), "replicas need") {
		t.Error("warned about a generated key although keys are configured")
	}
	var etag string
	for _, path := range []string{"/oauth2/jwks", "/.well-known/jwks.json"} {
		resp := e.get(e.broker.URL + path)
		h := resp.Header
		if resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "application/jwk-set+json" ||
			h.Get("Cache-Control") != "public, max-age=300" || h.Get("ETag") == "" {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, h)
		}
		if h.Get("Set-Cookie") != "" || h.Get("Vary") != "" {
			t.Errorf("%s: a cacheable response with Set-Cookie %q or Vary %q", path, h.Get("Set-Cookie"), h.Get("Vary"))
		}
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal([]byte(body(resp)), &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 2 || set.Keys[0]["alg"] != "ES256" || set.Keys[1]["alg"] != "EdDSA" ||
			set.Keys[0]["use"] != "sig" || set.Keys[0]["kid"] == "" || set.Keys[0]["d"] != "" || set.Keys[1]["d"] != "" {
			t.Errorf("%s: %v", path, set.Keys)
		}
		etag = h.Get("ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/jwks", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}
}

// TestAssertionKeyRotation follows docs/assertion.md: add the new key, swap
// the order, remove the old key. Apps verify throughout, and after the
// last step an assertion of the old key is refused.
func TestAssertionKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := writeKey(t, dir, "old.pem", "ec-sec1"), writeKey(t, dir, "new.pem", "rsa-pkcs1")
	alice := providers.Identity{Provider: "kc", Subject: "alice", Email: "alice@example.com", EmailVerified: true}

	// One public URL, whose broker is replaced at each step (a rolling restart).
	var mu sync.Mutex
	var current *Server
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := current
		mu.Unlock()
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	clk := testclock.At(time.Now())
	step := func(keys ...string) string {
		t.Helper()
		s, err := New(Config{PublicURL: front.URL, Providers: noNetworkProviders, Assertion: AssertionConfig{Enabled: true, SigningKeys: keys}},
			Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		current = s
		mu.Unlock()
		tok, err := s.assertion.Token(front.URL, "app", alice)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := step(oldKey)
	v, err := assertion.NewVerifier(t.Context(), assertion.Config{JWKSURL: front.URL + "/.well-known/jwks.json",
		Issuer: front.URL, Audience: "app", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(name, tok string, ok bool) {
		t.Helper()
		if _, err := v.Verify(t.Context(), tok); (err == nil) != ok {
			t.Errorf("%s: %v, want accepted %v", name, err, ok)
		}
	}
	verify("before", before, true)
	added := step(oldKey, newKey) // 1. publish the new key; the old one still signs
	verify("after adding", added, true)
	clk.Add(jwksMaxAge) // every app's cache now holds both keys
	swapped := step(newKey, oldKey)
	verify("new key signing", swapped, true)
	verify("old key's token, still published", added, true)
	clk.Add(jwksMaxAge + DefaultAssertionLifetime) // the old key's last tokens expired
	removed := step(newKey)
	verify("after removing", removed, true)
	verify("a (fresh) token of the removed key", signWith(t, oldKey, front.URL, clk), false)
}

// jwksMaxAge is the key set's max-age (relay), which key rotation waits for.
const jwksMaxAge = 5 * time.Minute

// signWith signs a fresh assertion with the key file path, as a broker
// that still had it would.
func signWith(t *testing.T, path, iss string, clk *testclock.Clock) string {
	t.Helper()
	s, err := New(Config{PublicURL: iss, Providers: noNetworkProviders, Assertion: AssertionConfig{Enabled: true, SigningKeys: []string{path}}},
		Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.assertion.Token(iss, "app", providers.Identity{Provider: "kc", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAssertionHeaderStripped(t *testing.T) {
	seen := make(chan http.Header, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() }))
	t.Cleanup(app.Close)
	srv, cookie := sessionServer(t, Config{Upstream: app.URL, Providers: noNetworkProviders,
		Assertion: AssertionConfig{Enabled: true, Header: "X-App-Identity"}})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(cookie)
	req.Header["X-App-Identity"] = []string{"forged"}
	req.Header["x-app-identity"] = []string{"forged"}
	req.Header["X_App_Identity"] = []string{"forged"}
	req.Header["X-App_IDENTITY"] = []string{"forged"}
	req.Header["X-Auth-Request-Assertion"] = []string{"forged"}
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	h := <-seen
	var got []string
	for k, vs := range h {
		if relay.MatchesAnyHeader(k, []string{"X-App-Identity"}) || relay.IsIdentityHeader(k) && k != HeaderUser && k != HeaderProvider &&
			k != HeaderEmail && k != HeaderPreferredUsername && k != HeaderGroups {
			got = append(got, k+": "+strings.Join(vs, ","))
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "X-App-Identity: ey") || strings.Contains(got[0], "forged") {
		t.Errorf("the app received %q; want only the broker's X-App-Identity", got)
	}
}

// noNetworkProviders lets New succeed without a network: discovery is lazy.
var noNetworkProviders = []providers.Config{{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s"}}

// sessionServer is a broker with one signed-in session (as benchServer).
func sessionServer(t *testing.T, cfg Config) (*Server, *http.Cookie) {
	t.Helper()
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	token, err := srv.sessions.Create(t.Context(), providers.Identity{Provider: "kc", Subject: "1", Email: "j@example.com", EmailVerified: true}, session.Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, &http.Cookie{Name: DefaultCookieName, Value: token}
}

// writeKey writes a new private key of a kind to dir/name.
func writeKey(t *testing.T, dir, name, kind string) string {
	t.Helper()
	var blocks []*pem.Block
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch kind {
	case "ec-pkcs8", "ec-sec1", "p384":
		curve := elliptic.P256()
		if kind == "p384" {
			curve = elliptic.P384()
		}
		k, _ := ecdsa.GenerateKey(curve, rand.Reader)
		if kind == "ec-sec1" {
			blocks = append(blocks, &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
				&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(k))})
		} else {
			blocks = append(blocks, &pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
		}
	case "ed25519":
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		blocks = append(blocks, &pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
	case "rsa-pkcs1", "rsa-pkcs8", "rsa1024":
		bits := 2048
		if kind == "rsa1024" {
			bits = 1024
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		if kind == "rsa-pkcs8" {
			blocks = append(blocks, &pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
		} else {
			blocks = append(blocks, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		}
	case "two":
		for range 2 {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			blocks = append(blocks, &pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
		}
	case "encrypted":
		blocks = append(blocks, &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	case "public":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		blocks = append(blocks, &pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(k.Public()))})
	case "garbage":
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	var out []byte
	for _, b := range blocks {
		out = append(out, pem.EncodeToMemory(b)...)
	}
	if kind == "garbage" {
		out = []byte("not a key\n")
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
