package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/demologin"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// deferred lets a test server start (and so know its URL) before its
// handler exists.
type deferred struct{ http.Handler }

// testIdP is one in-process demo IdP, optionally behind a tampering
// middleware.
type testIdP struct {
	id     string
	srv    *httptest.Server
	tamper *hostileidp.IdP
}

// env is a broker in front of a demo app with two demo IdPs.
type env struct {
	t      *testing.T
	broker *httptest.Server
	app    *httptest.Server
	server *Server
	idps   map[string]*testIdP
	client *http.Client // a browser: cookie jar, no automatic redirects
	logs   *logBuffer
}

// logBuffer collects the broker's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// settled is the log once the request line of the last request is in it:
// entry writes that line after the response went out, so a client may read
// the log before it arrives. It waits at most two seconds for want.
func (b *logBuffer) settled(want string) string {
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(b.String(), want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return b.String()
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type envOption func(*envConfig)

type envConfig struct {
	cfg Config
	now func() time.Time
	// level is the broker's log level: debug (the zero value's stand-in)
	// unless withLogLevel. Below info the request log is on, which makes
	// forward-auth take entry's whole path, never quickAuth.
	level    *slog.Level
	idpIss   map[string]bool
	authMeth map[string]string
	badCreds map[string]bool
	userinfo map[string]string // the providers' userinfo setting (withUserinfo)
	scopes   []string          // added to every provider's (withScopes)
	// users are accounts added at an IdP (withUsers).
	users map[string][]demo.User
	// mount, when set, makes the handler the test server serves from the
	// broker (withMount).
	mount func(*Server) http.Handler
	// more are providers after alpha and beta (withProviders).
	more []func(brokerURL string) []providers.Config
	// apiTokens are the api_tokens of alpha and beta (withAPITokens).
	apiTokens map[string]*providers.APITokensConfig
}

// withAPITokens lets API clients present the access tokens of the IdP id.
func withAPITokens(id string, a providers.APITokensConfig) envOption {
	return func(c *envConfig) {
		if c.apiTokens == nil {
			c.apiTokens = map[string]*providers.APITokensConfig{}
		}
		c.apiTokens[id] = &a
	}
}

// withProviders adds the providers more returns, given the broker's URL
// (for their redirect URIs), after the demo IdPs alpha and beta.
func withProviders(more func(brokerURL string) []providers.Config) envOption {
	return func(c *envConfig) { c.more = append(c.more, more) }
}

// withMount serves mount(server) instead of server.Handler(): an embedding
// program's mux.
func withMount(mount func(*Server) http.Handler) envOption {
	return func(c *envConfig) { c.mount = mount }
}

func withConfig(f func(*Config)) envOption { return func(c *envConfig) { f(&c.cfg) } }

// withIssParameter makes the IdP send RFC 9207 iss.
func withIssParameter(id string) envOption { return func(c *envConfig) { c.idpIss[id] = true } }

func withClock(now func() time.Time) envOption { return func(c *envConfig) { c.now = now } }

// withLogLevel sets the broker's log level (debug without it): info lets
// forward-auth answer a signed-in session through quickAuth.
func withLogLevel(l slog.Level) envOption { return func(c *envConfig) { c.level = &l } }

// withWrongSecret configures the broker with a client secret the IdP does
// not know.
func withWrongSecret(id string) envOption { return func(c *envConfig) { c.badCreds[id] = true } }

func withAuthMethod(id, m string) envOption { return func(c *envConfig) { c.authMeth[id] = m } }

// withUserinfo sets provider id's userinfo setting: "always" for the tests
// of what userinfo answers (the demo IdPs' ID tokens carry every claim,
// and "auto" then skips the call).
func withUserinfo(id, mode string) envOption { return func(c *envConfig) { c.userinfo[id] = mode } }

// withUsers adds accounts to the demo accounts of the IdP id.
func withUsers(id string, users ...demo.User) envOption {
	return func(c *envConfig) { c.users[id] = append(c.users[id], users...) }
}

// withScopes asks every provider for these scopes too (offline_access: a
// refresh token).
func withScopes(scopes ...string) envOption {
	return func(c *envConfig) { c.scopes = append(c.scopes, scopes...) }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ec := &envConfig{idpIss: map[string]bool{}, authMeth: map[string]string{}, badCreds: map[string]bool{},
		userinfo: map[string]string{}, users: map[string][]demo.User{}}
	for _, o := range opts {
		o(ec)
	}
	e := &env{t: t, idps: map[string]*testIdP{}}
	var bh deferred
	e.broker = httptest.NewServer(&bh)
	t.Cleanup(e.broker.Close)
	e.app = httptest.NewServer(demo.NewApp())
	t.Cleanup(e.app.Close)

	cfg := ec.cfg
	if len(cfg.Upstreams) == 0 { // tests of upstreams bring their own apps
		cfg.Upstream = e.app.URL
	}
	for _, id := range []string{"alpha", "beta"} {
		var ih deferred
		srv := httptest.NewServer(&ih)
		t.Cleanup(srv.Close)
		method := ec.authMeth[id]
		idpMethod, secret := method, clientSecret(id)
		tp := &hostileidp.IdP{}
		pc := providers.Config{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Issuer: srv.URL,
			ClientID: "broker-" + id, ClientSecret: secret, TokenEndpointAuthMethod: method,
			Scopes: append([]string{"openid", "email", "profile", "groups"}, ec.scopes...), Userinfo: ec.userinfo[id]}
		switch method {
		case providers.AuthNone:
			secret, pc.ClientSecret = "", ""
		case providers.AuthPrivateKeyJWT:
			// The hostile IdP wrapper checks the assertion, then authenticates to the
			// demo IdP (which knows only secrets) with Basic.
			idpMethod, pc.ClientSecret = providers.AuthClientSecretBasic, ""
			pc.PrivateKeyFile, pc.PrivateKeyID = writeClientKey(t, tp), "client-key-1"
			tp.ClientID, tp.ClientSecret = pc.ClientID, secret
		}
		h, err := demo.NewIdP(demo.IdPConfig{
			Issuer: srv.URL, Title: id, Users: append(demo.DemoUsers(id), ec.users[id]...),
			Clients: []demo.Client{{ID: "broker-" + id, Secret: secret, AuthMethod: idpMethod,
				RedirectURIs:           []string{e.broker.URL + "/oauth2/callback/" + id},
				PostLogoutRedirectURIs: []string{e.broker.URL + "/oauth2/signed_out/" + id}}},
			AuthorizationResponseIss: ec.idpIss[id],
		})
		if err != nil {
			t.Fatal(err)
		}
		tp.Next = h
		ih.Handler = tp
		e.idps[id] = &testIdP{id: id, srv: srv, tamper: tp}
		pc.APITokens = ec.apiTokens[id]
		if ec.badCreds[id] {
			pc.ClientSecret = "not-" + pc.ClientSecret
		}
		cfg.Providers = append(cfg.Providers, pc)
	}
	for _, more := range ec.more {
		cfg.Providers = append(cfg.Providers, more(e.broker.URL)...)
	}
	e.logs = &logBuffer{}
	level := slog.LevelDebug
	if ec.level != nil {
		level = *ec.level
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: level})), Now: ec.now})
	if err != nil {
		t.Fatal(err)
	}
	e.server = srv
	bh.Handler = srv.Handler()
	if ec.mount != nil {
		bh.Handler = ec.mount(srv)
	}
	e.client = newBrowser()
	return e
}

// interceptIdP puts rewrite in front of the env's IdP id for the requests
// to path: it gets the IdP's own answer, recorded, and writes the one the
// broker receives. Call it before the first request to that IdP.
func interceptIdP(e *env, id, path string, rewrite func(w http.ResponseWriter, answer *httptest.ResponseRecorder)) {
	d := e.idps[id].srv.Config.Handler.(*deferred)
	next := d.Handler
	d.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		rewrite(w, rec)
	})
}

// writeClientKey makes the client's private_key_jwt key: the PEM file for
// the broker, the public key for the hostile IdP wrapper.
func writeClientKey(t *testing.T, tp *hostileidp.IdP) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	tp.ClientKey = &key.PublicKey
	return path
}

// clientSecret is long enough to be an HS256 key, for the test that signs
// with it.
func clientSecret(id string) string { return "secret-" + id + "-0123456789abcdef0123456789abcdef" }

func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches a URL with the env's browser.
func (e *env) get(rawURL string) *http.Response {
	e.t.Helper()
	return e.do(e.client, http.MethodGet, rawURL, nil)
}

func (e *env) do(c *http.Client, method, rawURL string, form url.Values) *http.Response {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, rawURL, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

func body(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	return string(b)
}

// startLogin runs /oauth2/start/{provider}, the IdP's login form as user,
// and returns the callback URL the IdP sends the browser to, unvisited.
func (e *env) startLogin(c *http.Client, provider, user, rd string) *url.URL {
	e.t.Helper()
	resp := e.do(c, http.MethodGet, e.broker.URL+"/oauth2/start/"+provider+"?rd="+url.QueryEscape(rd), nil)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("start: status %d: %s", resp.StatusCode, body(resp))
	}
	at, _ := url.Parse(resp.Header.Get("Location"))
	return demologin.Walk(e.t, at, user, func(method, u string, form url.Values) *http.Response { return e.do(c, method, u, form) },
		func(u *url.URL) bool { return strings.HasPrefix(u.String(), e.broker.URL+"/oauth2/callback/") })
}

// login signs the env's browser in and returns the callback's response.
func (e *env) login(provider, user, rd string) *http.Response {
	e.t.Helper()
	cb := e.startLogin(e.client, provider, user, rd)
	return e.get(cb.String())
}
