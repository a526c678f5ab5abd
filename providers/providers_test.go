package providers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConfigValidate(t *testing.T) {
	ok := Config{ID: "kc", Issuer: "https://kc.example/realms/x", ClientID: "c", ClientSecret: "s"}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no id", func(c *Config) { c.ID = "" }, "id: is required"},
		{"bad id", func(c *Config) { c.ID = "Has Space" }, "id: \"Has Space\""},
		{"http issuer", func(c *Config) { c.Issuer = "http://kc.example" }, "issuer: \"http://kc.example\" must be an https URL"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://kc.example?x=1" }, "must not contain"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id: is required"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client_secret: is required"},
		{"secret on public client", func(c *Config) { c.TokenEndpointAuthMethod = AuthNone }, "client_secret: must be empty"},
		{"unknown auth method", func(c *Config) { c.TokenEndpointAuthMethod = "client_secret_jwt" }, "token_endpoint_auth_method: \"client_secret_jwt\""},
		{"private_key_jwt without a key", func(c *Config) { c.TokenEndpointAuthMethod = AuthPrivateKeyJWT; c.ClientSecret = "" }, "private_key_file: is required"},
		{"private_key_jwt with an unreadable key", func(c *Config) {
			c.TokenEndpointAuthMethod = AuthPrivateKeyJWT
			c.ClientSecret = ""
			c.PrivateKeyFile = "/nonexistent.pem"
		}, "private_key_file: cannot read \"/nonexistent.pem\""},
		{"symmetric alg", func(c *Config) { c.IDTokenSigningAlgs = []string{"HS256"} }, "id_token_signing_algs[0]: \"HS256\""},
		{"bad scope", func(c *Config) { c.Scopes = []string{"openid", "a b"} }, "scopes[1]"},
		{"bad userinfo", func(c *Config) { c.Userinfo = "sometimes" }, "userinfo: \"sometimes\""},
		{"auth_params overriding the flow", func(c *Config) { c.AuthParams = map[string]string{"prompt": "consent", "redirect_uri": "https://evil"} },
			"auth_params.redirect_uri: is set by the broker itself"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.edit(&cfg)
			err := cfg.validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	if err := (Config{ID: "x", Issuer: "http://127.0.0.1:9000", ClientID: "c", TokenEndpointAuthMethod: AuthNone}).validate(); err != nil {
		t.Errorf("loopback http issuer for a public client: %v", err)
	}
}

func TestRegistryReportsEveryProblem(t *testing.T) {
	_, err := NewRegistry(testTypes, []Config{
		{ID: "a", Issuer: "https://a", ClientID: "c", ClientSecret: "s"},
		{ID: "a", Issuer: "https://b", ClientID: "c", ClientSecret: "s"},
		{ID: "", Issuer: "", ClientID: "c", ClientSecret: "s"},
	}, Options{Logger: quiet})
	msg := err.Error()
	for _, want := range []string{"providers[1].id: \"a\" is used", "providers[2].id: is required", "providers[2].issuer: is required"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

// TestLazyDiscoveryWithBackoff: no network call at Open; a dead issuer
// fails fast during backoff, retries after it, and recovers by itself.
func TestLazyDiscoveryWithBackoff(t *testing.T) {
	var hits atomic.Int32
	var up atomic.Bool
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"issuer":"`+srv.URL+`","authorization_endpoint":"`+srv.URL+`/auth","token_endpoint":"`+srv.URL+`/token","jwks_uri":"`+srv.URL+`/keys","id_token_signing_alg_values_supported":["RS256","HS256"],"authorization_response_iss_parameter_supported":true}`)
	}))
	defer srv.Close()

	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	p, err := testTypes.Open(Config{ID: "x", Issuer: srv.URL, ClientID: "c", ClientSecret: "s",
		AuthParams: map[string]string{"access_type": "offline", "prompt": "consent"}}, Options{Logger: quiet, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Fatal("Open made a network call")
	}
	ctx := context.Background()
	req := AuthRequest{State: "st", Nonce: "n", Verifier: strings.Repeat("v", 43), RedirectURI: "http://127.0.0.1/cb"}
	_, err = p.AuthCodeURL(ctx, req)
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("dead IdP: err = %v", err)
	}
	if st := p.Status(); st.Available {
		t.Error("status available after a failure")
	}
	// During backoff: no new request.
	before := hits.Load()
	if _, err := p.AuthCodeURL(ctx, req); !errors.As(err, &ue) || hits.Load() != before {
		t.Fatalf("backoff not honoured: err=%v hits %d→%d", err, before, hits.Load())
	}
	up.Store(true)
	advance(2 * time.Second)
	u, err := p.AuthCodeURL(ctx, req)
	if err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	for _, want := range []string{"state=st", "nonce=n", "code_challenge_method=S256", "redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb", "scope=openid+email+profile",
		"access_type=offline", "prompt=consent"} {
		if !strings.Contains(u, want) {
			t.Errorf("auth URL %s lacks %s", u, want)
		}
	}
	if strings.Contains(u, strings.Repeat("v", 43)) {
		t.Error("the PKCE verifier was sent")
	}
	if !p.Status().Available {
		t.Error("status unavailable after recovery")
	}
	c, _ := p.(*oidcProvider).discovered(ctx)
	if got := c.rp.IDTokenVerifier().SupportedSignAlgs; !reflect.DeepEqual(got, []string{"RS256"}) {
		t.Errorf("accepted algs %v: HS256 must be dropped", got)
	}
	if !c.issParameter {
		t.Error("RFC 9207 flag not read from discovery")
	}
}

func TestDiscoveryIssuerMismatchIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"issuer":"https://other.example","authorization_endpoint":"x","token_endpoint":"y","jwks_uri":"z"}`)
	}))
	defer srv.Close()
	p, _ := testTypes.Open(Config{ID: "x", Issuer: srv.URL, ClientID: "c", ClientSecret: "s"}, Options{Logger: quiet})
	_, err := p.AuthCodeURL(context.Background(), AuthRequest{})
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v", err)
	}
}

// TestLDAPBlockOnAnotherType: an ldap block is refused on every type but
// ldap, whichever type it is.
func TestLDAPBlockOnAnotherType(t *testing.T) {
	for _, c := range []Config{
		{ID: "g", Issuer: "https://accounts.google.com", ClientID: "x", ClientSecret: "y", LDAP: &LDAPConfig{}},
		{ID: "l", Type: TypeLocal, HtpasswdFile: "users.htpasswd", LDAP: &LDAPConfig{}},
	} {
		if err := errors.Join(c.sharedProblems()...); err == nil || !strings.Contains(err.Error(), "ldap: is only used by providers of type ldap") {
			t.Errorf("%s: err = %v", c.ID, err)
		}
	}
}
