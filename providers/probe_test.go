package providers

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oidc-broker/oidc-broker/demo"
)

// probeIdP is an in-process IdP for Probe: a discovery document (edit
// changes the good one) and a JWK Set with real generated public keys.
func probeIdP(t *testing.T, edit func(srvURL string, doc map[string]any, keys *[]jose.JSONWebKey)) *httptest.Server {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	var keys []jose.JSONWebKey
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(doc)
		case "/keys":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	doc = map[string]any{
		"issuer":                                         srv.URL,
		"authorization_endpoint":                         srv.URL + "/authorize",
		"token_endpoint":                                 srv.URL + "/token",
		"jwks_uri":                                       srv.URL + "/keys",
		"end_session_endpoint":                           srv.URL + "/logout",
		"id_token_signing_alg_values_supported":          []string{"ES256", "EdDSA", "HS256"},
		"code_challenge_methods_supported":               []string{"plain", "S256"},
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "private_key_jwt"},
		"authorization_response_iss_parameter_supported": true,
	}
	keys = []jose.JSONWebKey{
		{Key: &ec.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		{Key: ed, KeyID: "ed-1", Algorithm: "EdDSA", Use: "sig"},
		{Key: &ec.PublicKey, KeyID: "enc-1", Algorithm: "ECDH-ES", Use: "enc"}, // not for signatures
	}
	if edit != nil {
		edit(srv.URL, doc, &keys)
	}
	return srv
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// finding returns the report's finding for check, failing the test when
// there is none.
func finding(t *testing.T, r Report, check string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("report has no %q finding: %+v", check, r.Findings)
	return Finding{}
}

func TestProbeOpenIDProviders(t *testing.T) {
	type want struct {
		severity Severity
		contains string
	}
	cases := []struct {
		name  string
		edit  func(srvURL string, doc map[string]any, keys *[]jose.JSONWebKey)
		cfg   func(*Config)
		worst Severity
		want  map[string]want
	}{
		{
			name:  "good",
			worst: SeverityOK,
			want: map[string]want{
				checkDiscovery:   {SeverityOK, "/.well-known/openid-configuration answered HTTP 200"},
				checkIss:         {SeverityOK, "equals the configured one"},
				checkAlgs:        {SeverityOK, "offered: ES256, EdDSA, HS256; accepted: ES256, EdDSA"},
				checkPKCE:        {SeverityOK, "S256 supported"},
				checkEndSession:  {SeverityOK, "/logout"},
				checkBackchannel: {SeverityOK, "with sid"},
				checkIssParam:    {SeverityOK, "RFC 9207"},
				checkAuthMethod:  {SeverityOK, "client_secret_basic supported"},
				checkJWKS:        {SeverityOK, "/keys: 2 usable signing key(s)"},
			},
		},
		{
			name:  "issuer mismatch (a trailing slash)",
			edit:  func(u string, doc map[string]any, _ *[]jose.JSONWebKey) { doc["issuer"] = u + "/" },
			worst: SeverityError,
			want:  map[string]want{checkIss: {SeverityError, "must be equal"}, checkJWKS: {SeverityOK, "2 usable"}},
		},
		{
			name: "no logout, no PKCE list, no RFC 9207",
			edit: func(_ string, doc map[string]any, _ *[]jose.JSONWebKey) {
				for _, k := range []string{"end_session_endpoint", "backchannel_logout_supported", "backchannel_logout_session_supported",
					"code_challenge_methods_supported", "authorization_response_iss_parameter_supported", "token_endpoint_auth_methods_supported"} {
					delete(doc, k)
				}
			},
			worst: SeverityWarning,
			want: map[string]want{
				checkEndSession:  {SeverityWarning, "no end_session_endpoint"},
				checkBackchannel: {SeverityWarning, "not supported"},
				checkPKCE:        {SeverityWarning, "unknown: code_challenge_methods_supported is absent"},
				checkIssParam:    {SeverityWarning, "not announced"},
				checkAuthMethod:  {SeverityOK, "client_secret_basic supported"}, // the spec's default
			},
		},
		{
			name: "back-channel logout without sid, PKCE without S256",
			edit: func(_ string, doc map[string]any, _ *[]jose.JSONWebKey) {
				doc["backchannel_logout_session_supported"] = false
				doc["code_challenge_methods_supported"] = []string{"plain"}
			},
			worst: SeverityWarning,
			want: map[string]want{
				checkBackchannel: {SeverityOK, "without sid"},
				checkPKCE:        {SeverityWarning, "lacks S256"},
			},
		},
		{
			name: "HS256 only",
			edit: func(_ string, doc map[string]any, keys *[]jose.JSONWebKey) {
				doc["id_token_signing_alg_values_supported"] = []string{"HS256"}
				*keys = []jose.JSONWebKey{{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256", Use: "sig"}}
			},
			worst: SeverityError,
			want: map[string]want{
				checkAlgs: {SeverityError, "offered: HS256; none is one the broker accepts"},
				checkJWKS: {SeverityError, "1 key(s), none a public signing key"},
			},
		},
		{
			name:  "configured algorithms the IdP does not offer",
			cfg:   func(c *Config) { c.IDTokenSigningAlgs = []string{"RS256"} },
			worst: SeverityError,
			want:  map[string]want{checkAlgs: {SeverityError, "id_token_signing_algs allows only RS256"}},
		},
		{
			name: "no algorithm list means RS256, and there is no RSA key",
			edit: func(_ string, doc map[string]any, _ *[]jose.JSONWebKey) {
				delete(doc, "id_token_signing_alg_values_supported")
			},
			worst: SeverityError,
			want: map[string]want{
				checkAlgs: {SeverityOK, "none listed (RS256 by default); accepted: RS256"},
				checkJWKS: {SeverityError, "3 key(s), none a public signing key for RS256"},
			},
		},
		{
			name:  "auth method not listed",
			cfg:   func(c *Config) { c.TokenEndpointAuthMethod = AuthClientSecretPost },
			worst: SeverityWarning,
			want:  map[string]want{checkAuthMethod: {SeverityWarning, "not client_secret_post"}},
		},
		{
			name: "require_iss_parameter without the IdP announcing it",
			edit: func(_ string, doc map[string]any, _ *[]jose.JSONWebKey) {
				doc["authorization_response_iss_parameter_supported"] = false
			},
			cfg:   func(c *Config) { c.RequireIssParameter = true },
			worst: SeverityWarning,
			want:  map[string]want{checkIssParam: {SeverityWarning, "require_iss_parameter is set"}},
		},
		{
			name:  "JWKS missing",
			edit:  func(u string, doc map[string]any, _ *[]jose.JSONWebKey) { doc["jwks_uri"] = u + "/nowhere" },
			worst: SeverityError,
			want:  map[string]want{checkJWKS: {SeverityError, "/nowhere answered HTTP 404"}},
		},
		{
			name: "a discovery document that discovery cannot read",
			edit: func(_ string, doc map[string]any, _ *[]jose.JSONWebKey) {
				doc["authorization_response_iss_parameter_supported"] = "yes"
			},
			worst: SeverityError,
			want:  map[string]want{checkDiscovery: {SeverityError, "malformed"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := probeIdP(t, c.edit)
			cfg := Config{ID: "idp", Issuer: srv.URL, ClientID: "broker", ClientSecret: "top-secret-value"}
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			r := testTypes.Probe(context.Background(), cfg, nil)
			if r.Provider != "idp" || r.Type != TypeOIDC || r.Issuer != srv.URL {
				t.Errorf("report heading = %q %q %q", r.Provider, r.Type, r.Issuer)
			}
			if got := r.Worst(); got != c.worst {
				t.Errorf("worst = %v, want %v: %+v", got, c.worst, r.Findings)
			}
			for check, w := range c.want {
				f := finding(t, r, check)
				if f.Severity != w.severity || !strings.Contains(f.Message, w.contains) {
					t.Errorf("%s = %v %q, want %v containing %q", check, f.Severity, f.Message, w.severity, w.contains)
				}
			}
			if b, _ := json.Marshal(r); strings.Contains(string(b), "top-secret-value") {
				t.Error("the client secret is in the report")
			}
		})
	}
}

func TestProbeUnreachable(t *testing.T) {
	r := testTypes.Probe(context.Background(), Config{ID: "gone", Issuer: closedPort(t), ClientID: "c", ClientSecret: "s"}, nil)
	if len(r.Findings) != 1 {
		t.Fatalf("findings after an unreachable discovery: %+v", r.Findings)
	}
	f := r.Findings[0]
	if f.Check != checkDiscovery || f.Severity != SeverityError || !strings.Contains(f.Message, "is unreachable: dial tcp") {
		t.Errorf("finding = %+v", f)
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	r = testTypes.Probe(context.Background(), Config{ID: "down", Issuer: down.URL, ClientID: "c", ClientSecret: "s"}, nil)
	if f := finding(t, r, checkDiscovery); f.Severity != SeverityError || !strings.HasSuffix(f.Message, "answered HTTP 503") {
		t.Errorf("finding = %+v", f)
	}
}

// TestProbeRealOpenIDProvider: a zitadel op IdP (the demo one) passes the
// checks that decide whether logins work.
func TestProbeRealOpenIDProvider(t *testing.T) {
	var h deferredHandler
	srv := httptest.NewServer(&h)
	defer srv.Close()
	idp, err := demo.NewIdP(demo.IdPConfig{Issuer: srv.URL, Users: demo.DemoUsers("acme"),
		Clients: []demo.Client{{ID: "broker", Secret: "s3cret", RedirectURIs: []string{"http://127.0.0.1/cb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	h.Handler = idp
	r := testTypes.Probe(context.Background(), Config{ID: "demo", Issuer: srv.URL, ClientID: "broker", ClientSecret: "s3cret"}, nil)
	for _, check := range []string{checkDiscovery, checkIss, checkAlgs, checkPKCE, checkEndSession, checkAuthMethod, checkJWKS} {
		if f := finding(t, r, check); f.Severity != SeverityOK {
			t.Errorf("%s: %v %s", check, f.Severity, f.Message)
		}
	}
	if r.Worst() == SeverityError {
		t.Errorf("errors: %+v", r.Findings)
	}
}

type deferredHandler struct{ http.Handler }

func TestProbeOAuth2(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusMethodNotAllowed)
	}))
	defer api.Close()
	cfg := Config{ID: "gh", Type: TypeOAuth2, ClientID: "c", ClientSecret: "s",
		AuthorizationEndpoint: api.URL + "/authorize", TokenEndpoint: api.URL + "/token", UserinfoEndpoint: closedPort(t) + "/user"}
	r := testTypes.Probe(context.Background(), cfg, nil)
	if f := finding(t, r, checkDiscovery); f.Severity != SeverityOK || !strings.Contains(f.Message, "nothing to discover") {
		t.Errorf("discovery: %+v", f)
	}
	if f := finding(t, r, "token_endpoint"); f.Severity != SeverityOK || !strings.Contains(f.Message, "answers (HTTP 405)") {
		t.Errorf("token_endpoint: %+v", f)
	}
	if f := finding(t, r, "userinfo_endpoint"); f.Severity != SeverityError || !strings.Contains(f.Message, "unreachable") {
		t.Errorf("userinfo_endpoint: %+v", f)
	}
	if r.Worst() != SeverityError {
		t.Error("an unreachable endpoint is not an error")
	}
}

// countingTransport counts the requests in flight and their peak.
type countingTransport struct{ inFlight, peak atomic.Int32 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestProbeAllBoundsTimeAndConcurrency: a hanging IdP costs the timeout,
// not more; at most maxProbes probes run at once; reports keep the order.
func TestProbeAllBoundsTimeAndConcurrency(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	good := probeIdP(t, nil)
	cfgs := []Config{{ID: "good", Issuer: good.URL, ClientID: "c", ClientSecret: "s"}}
	for i := range 3 * maxProbes {
		cfgs = append(cfgs, Config{ID: "hang" + string(rune('a'+i)), Issuer: hang.URL + "/t" + string(rune('a'+i)), ClientID: "c", ClientSecret: "s"})
	}
	counter := &countingTransport{}
	start := time.Now()
	reports := testTypes.ProbeAll(context.Background(), cfgs, &http.Client{Transport: counter}, 200*time.Millisecond)
	elapsed := time.Since(start)
	if elapsed > 3*time.Second {
		t.Errorf("took %v for %d providers with a 200ms timeout", elapsed, len(cfgs))
	}
	if got := counter.peak.Load(); got != maxProbes {
		t.Errorf("%d probes at once, want %d", got, maxProbes)
	}
	if len(reports) != len(cfgs) || reports[0].Provider != "good" || reports[0].Worst() != SeverityOK {
		t.Fatalf("reports: %d, first %+v", len(reports), reports[0])
	}
	for i, r := range reports[1:] {
		if r.Provider != cfgs[i+1].ID {
			t.Errorf("report %d is for %s, want %s", i+1, r.Provider, cfgs[i+1].ID)
		}
		if f := finding(t, r, checkDiscovery); f.Severity != SeverityError || !strings.Contains(f.Message, "no answer before the timeout") {
			t.Errorf("%s: %+v", r.Provider, f)
		}
	}
}

// TestReachability: what a provider knows without asking, and Reach asking.
func TestReachability(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []IdPCall
	)
	good := probeIdP(t, nil)
	gone := closedPort(t)
	reg, err := NewRegistry(testTypes, []Config{
		{ID: "good", Issuer: good.URL, ClientID: "c", ClientSecret: "s"},
		{ID: "gone", Issuer: gone, ClientID: "c", ClientSecret: "s"},
		{ID: "gh", Type: TypeOAuth2, ClientID: "c", ClientSecret: "s", AuthorizationEndpoint: good.URL + "/authorize",
			TokenEndpoint: good.URL + "/token", UserinfoEndpoint: good.URL + "/user"},
	}, Options{Logger: quiet, Observe: func(c IdPCall) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range reg.All() {
		if k := KnownReachability(p); k != ReachUnknown {
			t.Errorf("%s: known %v before any request", p.ID(), k)
		}
	}
	get := func(id string) Provider { p, _ := reg.Get(id); return p }
	if err := Reach(ctx, get("good")); err != nil {
		t.Errorf("good: %v", err)
	}
	if err := Reach(ctx, get("gh")); err != nil {
		t.Errorf("gh: %v", err)
	}
	if err := Reach(ctx, get("gone")); err == nil || !strings.Contains(err.Error(), "providers: gone: discovery:") {
		t.Errorf("gone: %v", err)
	}
	// The readiness check's discovery requests are observed like the
	// others (metrics); the plain OAuth2 provider's GET to its token
	// endpoint is not (its 4xx would count as a failed token request).
	mu.Lock()
	seen := slices.Clone(calls)
	mu.Unlock()
	if len(seen) != 2 || seen[0].Provider != "good" || seen[0].Endpoint != EndpointDiscovery || seen[0].Status != http.StatusOK ||
		seen[1].Provider != "gone" || seen[1].Endpoint != EndpointDiscovery || seen[1].Err == nil {
		t.Errorf("observed calls: %+v", seen)
	}
	if k := KnownReachability(get("good")); k != ReachUnknown {
		t.Errorf("Reach changed the provider's state: %v", k)
	}
	if _, err := get("good").AuthCodeURL(ctx, AuthRequest{RedirectURI: "http://127.0.0.1/cb"}); err != nil {
		t.Fatal(err)
	}
	if _, err := get("gone").AuthCodeURL(ctx, AuthRequest{RedirectURI: "http://127.0.0.1/cb"}); err == nil {
		t.Fatal("a closed port was discovered")
	}
	if k := KnownReachability(get("good")); k != ReachOK {
		t.Errorf("good after discovery: %v", k)
	}
	if k := KnownReachability(get("gone")); k != ReachFailed {
		t.Errorf("gone during back-off: %v", k)
	}
	if k := KnownReachability(get("gh")); k != ReachUnknown {
		t.Errorf("oauth2: %v", k)
	}
}
