package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The Redis store's tests run a real redis-server (redisserver.Start fails
// the test when it is not installed; ./scripts/test installs it).

// withRedis makes the env's broker keep its sessions in r.
func withRedis(r *redisserver.Server, f ...func(*RedisConfig)) envOption {
	return withConfig(func(c *Config) {
		c.Session.Store = "redis"
		c.Session.Redis = RedisConfig{Address: r.Addr}
		for _, g := range f {
			g(&c.Session.Redis)
		}
	})
}

// newRedisEnv is newEnv on Redis; the broker's pool is closed at the end.
func newRedisEnv(t *testing.T, r *redisserver.Server, opts ...envOption) *env {
	t.Helper()
	e := newEnv(t, append([]envOption{withRedis(r)}, opts...)...)
	t.Cleanup(func() { _ = e.server.Close() })
	return e
}

// shortTimeouts make a hung Redis fail requests quickly.
func shortTimeouts(c *RedisConfig) {
	c.DialTimeout, c.ReadTimeout, c.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
}

// TestRedisReplicas: a login started on one broker completes on another
// that shares the Redis server, and a sign-out on either ends it on both.
func TestRedisReplicas(t *testing.T) {
	r := redisserver.Start(t)
	a := newRedisEnv(t, r)
	// Replica B: the same configuration; both know the public URL (A's), as
	// replicas behind one load balancer do. Cookies are per host, not per
	// port, so the browser's cookie for 127.0.0.1 reaches both.
	cfg := a.server.cfg
	cfg.PublicURL = a.broker.URL
	b, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	bSrv := httptest.NewServer(b.Handler())
	t.Cleanup(bSrv.Close)
	onB := func(u string) string { return strings.Replace(u, a.broker.URL, bSrv.URL, 1) }

	cb := a.startLogin(a.client, "alpha", "alice", "/after")
	resp := a.get(onB(cb.String()))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/after" {
		t.Fatalf("callback on B: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
	}
	for _, base := range []string{a.broker.URL, bSrv.URL} {
		if resp := a.get(base + "/oauth2/auth"); resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderUser) != "alpha:alpha-alice" {
			t.Errorf("auth at %s: %d %q", base, resp.StatusCode, resp.Header.Get(HeaderUser))
		}
	}
	// The state is spent on every replica: a replay on A fails.
	if resp := a.get(cb.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback on A: %d", resp.StatusCode)
	}

	// Sign out on B; A no longer knows the session.
	csrf := signOutToken(t, a, onB(a.broker.URL+"/oauth2/sign_out"))
	if resp := a.do(a.client, http.MethodPost, onB(a.broker.URL+"/oauth2/sign_out"), url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on B: %d", resp.StatusCode)
	}
	if a.signedIn(a.client) {
		t.Error("still signed in on A after signing out on B")
	}
}

// signOutToken reads the CSRF token of the sign-out page at pageURL.
func signOutToken(t *testing.T, e *env, pageURL string) string {
	t.Helper()
	b := body(e.get(pageURL))
	_, after, ok := strings.Cut(b, `name="csrf" value="`)
	if !ok {
		t.Fatalf("no csrf field: %s", b)
	}
	return after[:strings.IndexByte(after, '"')]
}

// TestRedisDown: while Redis is down, requests that need a session answer
// 503 with Retry-After and write nothing, public routes and pages work,
// and /readyz fails; when Redis is back, so is the service, sessions and
// all.
func TestRedisDown(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r, withConfig(func(c *Config) {
		c.Routes = []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}}
	}))
	e.login("alpha", "alice", "/")
	if !e.signedIn(e.client) {
		t.Fatal("not signed in")
	}
	r.Stop()
	// The session cache's subscription breaks with the connection; until
	// the broker notices (at once, on a closed connection), a cached
	// session would still be served.
	waitFor(t, 2*time.Second, "the session cache off", func() bool { return !redisStoreOf(t, e.server).Subscribed() })
	checkStoreDown(t, e)
	r.Restart()
	checkStoreBack(t, e)
}

// TestRedisHung: a Redis that does not answer (SIGSTOP) fails requests
// within the configured timeouts, even with more requests than pooled
// connections, and the service comes back when Redis does.
func TestRedisHung(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r, withRedis(r, shortTimeouts, func(c *RedisConfig) { c.PoolMaxActive, c.PoolMaxIdle = 2, 1 }),
		withConfig(func(c *Config) { c.Routes = []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}} }))
	e.login("alpha", "alice", "/")
	r.Pause()
	resumed := false
	defer func() {
		if !resumed {
			r.Resume()
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = e.do(e.client, http.MethodGet, e.broker.URL+"/oauth2/auth", nil).StatusCode
		})
	}
	wg.Wait()
	// One operation may take dial + write + read (0.9 s), after waiting as
	// long for a connection; two in a row at most for these requests.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("8 requests on 2 connections to a hung Redis took %v", d)
	}
	for i, c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("request %d: %d, want 503", i, c)
		}
	}
	checkStoreDown(t, e)
	r.Resume()
	resumed = true
	checkStoreBack(t, e)
}

func checkStoreDown(t *testing.T, e *env) {
	t.Helper()
	api := func(method, path string) *http.Response {
		req, _ := http.NewRequest(method, e.broker.URL+path, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/oauth2/auth", 503},
		{"GET", "/app", 503}, // protected: who is asking is unknown
		{"POST", "/app", 503},
		{"GET", "/oauth2/start/alpha", 503},
		{"GET", "/oauth2/callback/alpha?state=x&code=y", 503},
		{"GET", "/oauth2/userinfo", 503},
		{"GET", "/oauth2/sign_out", 503},
		{"POST", "/oauth2/sign_out", 503},
		{"GET", "/oauth2/local/alpha?state=x", 503},
		{"GET", "/readyz", 503},
		{"GET", "/public/page", 200}, // public routes keep working
		{"GET", "/oauth2/sign_in", 200},
		{"GET", "/healthz", 200},
	} {
		resp := api(c.method, c.path)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with Redis down: %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
		if c.want == 503 && c.path != "/readyz" && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", c.method, c.path)
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 && strings.Contains(strings.Join(sc, ";"), DefaultCookieName) {
			t.Errorf("%s %s with Redis down wrote the session cookie: %q", c.method, c.path, sc)
		}
	}
}

func checkStoreBack(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.do(e.client, http.MethodGet, e.broker.URL+"/readyz", nil).StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("/readyz does not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !e.signedIn(e.client) {
		t.Error("the session was lost")
	}
	e.login("beta", "bob", "/") // and new logins work
	if resp := e.get(e.broker.URL + "/oauth2/auth"); resp.Header.Get(HeaderUser) != "beta:beta-bob" {
		t.Errorf("after a new login: %d %q", resp.StatusCode, resp.Header.Get(HeaderUser))
	}
}

// TestRedisUndecodableSession: a stored session this version cannot read is
// no session (sign in again), not an outage.
func TestRedisUndecodableSession(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	e.login("alpha", "alice", "/")
	keys, _ := redis.Strings(r.Do("KEYS", DefaultRedisKeyPrefix+"session:*"), nil)
	if len(keys) != 1 {
		t.Fatalf("session keys %q", keys)
	}
	r.Do("SET", keys[0], "not gob")
	if resp := e.get(e.broker.URL + "/oauth2/auth"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("auth with an undecodable session: %d, want 401", resp.StatusCode)
	}
}

// TestRedisLifetimeAndIdleTimeout: both end sessions in Redis (scs sets
// the key's expiry to the earlier of the two).
func TestRedisLifetimeAndIdleTimeout(t *testing.T) {
	r := redisserver.Start(t)
	t.Run("idle", func(t *testing.T) {
		e := newRedisEnv(t, r, withConfig(func(c *Config) { c.Session.IdleTimeout = 1500 * time.Millisecond }))
		e.login("alpha", "alice", "/")
		for range 3 { // use keeps it alive past the idle timeout
			time.Sleep(700 * time.Millisecond)
			if !e.signedIn(e.client) {
				t.Fatal("signed out while in use")
			}
		}
		time.Sleep(2 * time.Second)
		if e.signedIn(e.client) {
			t.Error("still signed in after the idle timeout")
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		e := newRedisEnv(t, r, withConfig(func(c *Config) { c.Session.Lifetime = 1500 * time.Millisecond }))
		e.login("alpha", "alice", "/")
		keys, _ := redis.Strings(r.Do("KEYS", DefaultRedisKeyPrefix+"session:*"), nil)
		for _, k := range keys {
			if ms, _ := redis.Int64(r.Do("PTTL", k), nil); ms <= 0 || ms > 1500 {
				t.Errorf("%s expires in %d ms, want at most the lifetime", k, ms)
			}
		}
		deadline := time.Now().Add(1400 * time.Millisecond)
		for time.Now().Before(deadline) {
			if !e.signedIn(e.client) {
				t.Fatal("signed out before the lifetime")
			}
			time.Sleep(300 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		if e.signedIn(e.client) {
			t.Error("still signed in after the lifetime, in use as it was")
		}
	})
}

// TestRedisSessionSize measures what a signed-in session costs in Redis:
// after a real login at the demo IdP (two groups, its ID token, no refresh
// token), and for a typical one with three groups, a refresh token and a
// sid besides.
func TestRedisSessionSize(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	e.login("alpha", "alice", "/")
	keys, _ := redis.Strings(r.Do("KEYS", DefaultRedisKeyPrefix+"session:*"), nil)
	if len(keys) != 1 {
		t.Fatalf("session keys %q", keys)
	}
	size := func(key string) (stored, usage int) {
		stored, _ = redis.Int(r.Do("STRLEN", key), nil)
		return stored, memoryUsage(r, key)
	}
	n, mem := size(keys[0])
	var index int
	idx, _ := redis.Strings(r.Do("KEYS", DefaultRedisKeyPrefix+"index:*"), nil)
	for _, k := range idx {
		index += memoryUsage(r, k)
	}
	ctx, err := e.server.sessions.LoadStored(strings.TrimPrefix(keys[0], DefaultRedisKeyPrefix+"session:"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := e.server.sessions.Tokens(ctx)
	t.Logf("demo login: %d bytes stored (ID token %d), MEMORY USAGE %d; %d index key(s): MEMORY USAGE %d", n, len(tok.IDToken), mem, len(idx), index)
	// 1,678 before the tokens were packed (session/compact.go), 1,012
	// after; the identity's AuthnTime and ACR then added 34 to every
	// session (1,031-1,037), and writing it without gob's type names
	// (session/gobwire.go) took it to 953-955.
	if n > 970 {
		t.Errorf("the demo login's session takes %d bytes, more than 970", n)
	}

	// The typical session: three groups, a refresh token of 512 characters
	// (opaque ones are shorter, JWTs as Keycloak's longer) and a sid.
	id, _ := e.server.sessions.Identity(ctx)
	id.Groups = append(id.Groups, "staff")
	tok.RefreshToken, tok.SID = strings.Repeat("r", 512), "5bd5a3f4-2f5e-4c5a-9a4f-0d1e2f3a4b5c"
	e.server.sessions.SetLogin(ctx, id, tok)
	if err := e.server.sessions.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	n, mem = size(keys[0])
	t.Logf("typical: %d bytes stored, MEMORY USAGE %d", n, mem)
	if n > 4096 {
		t.Errorf("a session takes %d bytes", n)
	}
}

func memoryUsage(r *redisserver.Server, key string) int {
	n, _ := redis.Int(r.Do("MEMORY", "USAGE", key, "SAMPLES", "0"), nil)
	return n
}

func TestRedisConfigProblems(t *testing.T) {
	base := "providers: [{id: a, issuer: 'https://idp.example', client_id: c, client_secret: s}]\n"
	cases := []struct {
		name, yaml string
		want       []string // substrings of the problems, in order
	}{
		{"address required", "session: {store: redis}\n", []string{"line 2: session.redis.address: is required with session.store: redis"}},
		{"bad address", "session: {store: redis, redis: {address: 'redis'}}\n", []string{`session.redis.address: "redis" is not host:port`}},
		{"unknown store", "session: {store: mongo}\n", []string{`session.store: "mongo" is not a known store (memory, redis)`}},
		{"negatives", "session:\n  store: redis\n  persistent_max: -1s\n  cache_ttl: -1s\n  redis: {address: 'r:6379', database: -1, read_timeout: -1s, pool_max_active: -2}\n",
			[]string{"session.persistent_max: must not be negative", "session.cache_ttl: must not be negative (0 turns the cache off)", "session.redis.database: must not be negative",
				"session.redis.read_timeout: must not be negative", "session.redis.pool_max_active: must not be negative"}},
		{"idle above active", "session: {store: redis, redis: {address: 'r:6379', pool_max_idle: 9, pool_max_active: 4}}\n",
			[]string{"session.redis.pool_max_idle: 9 is more than pool_max_active (4)"}},
		{"unknown tls key", "session:\n  store: redis\n  redis:\n    address: 'r:6379'\n    tls:\n      ca: x\n", []string{"line 7:", `session.redis.tls.ca: unknown key`}},
		{"missing ca file", "session: {store: redis, redis: {address: 'r:6379', tls: {ca_file: /nonexistent.pem}}}\n",
			[]string{"session.redis.tls.ca_file: open /nonexistent.pem"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("b.yaml", []byte(base+c.yaml), func(string) (string, bool) { return "", false })
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, w := range c.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("problems lack %q:\n%s", w, msg)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestRedisConfigParsed(t *testing.T) {
	env := map[string]string{"REDIS_PASSWORD": "p#ss: {x}"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	parse := func(session string) Config {
		t.Helper()
		cfg, err := ParseConfig("b.yaml", []byte("providers: [{id: a, issuer: 'https://idp.example', client_id: c, client_secret: s}]\n"+session), lookup)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse("session:\n  store: redis\n  redis:\n    address: 'redis.internal:6380'\n    username: broker\n    password: ${REDIS_PASSWORD}\n    database: 2\n    tls: true\n    read_timeout: 500ms\n    key_prefix: 'b1:'\n")
	want := RedisConfig{Address: "redis.internal:6380", Username: "broker", Password: "p#ss: {x}", Database: 2,
		TLS: RedisTLS{Enabled: true}, ReadTimeout: 500 * time.Millisecond, KeyPrefix: "b1:"}
	if !reflect.DeepEqual(cfg.Session.Redis, want) {
		t.Errorf("parsed %+v\nwant %+v", cfg.Session.Redis, want)
	}
	if w := cfg.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
	if got := cfg.Session.cacheTTL(); cfg.Session.CacheTTL != nil || got != DefaultCacheTTL {
		t.Errorf("cache_ttl unset: %v", got)
	}
	for yaml, want := range map[string]time.Duration{"cache_ttl: 0s": 0, "cache_ttl: 0": 0, "cache_ttl: 1m": time.Minute} {
		if got := parse("session: {store: redis, redis: {address: '127.0.0.1:6379'}, " + yaml + "}\n").Session.cacheTTL(); got != want {
			t.Errorf("%s: %v, want %v", yaml, got, want)
		}
	}
	cfg = parse("session: {store: redis, redis: {address: '10.0.0.5:6379', tls: {server_name: r.internal, insecure_skip_verify: true}}}\n")
	if tls := cfg.Session.Redis.TLS; tls != (RedisTLS{Enabled: true, ServerName: "r.internal", InsecureSkipVerify: true}) {
		t.Errorf("tls %+v", tls)
	}
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "insecure_skip_verify") {
		t.Errorf("no warning for insecure_skip_verify: %q", w)
	}
	cfg = parse("session: {store: redis, redis: {address: '10.0.0.5:6379', tls: false}}\n")
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "not encrypted") {
		t.Errorf("no warning for a clear-text connection: %q", w)
	}
	cfg = parse("session: {redis: {address: '127.0.0.1:6379'}, persistent_max: 1h}\n")
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "session.redis: is set but session.store is not redis") ||
		!strings.Contains(w, "session.persistent_max: 1h0m0s is shorter than session.lifetime") {
		t.Errorf("warnings %q", w)
	}
}

// TestRedisStartsWhileDown: New makes no connection; the broker serves its
// public pages, and /readyz says the store is missing.
func TestRedisStartsWhileDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := Config{Providers: []providers.Config{providerConfig("alpha")},
		Session: SessionConfig{Store: "redis", Redis: RedisConfig{Address: addr}}}
	s, h := signInServer(t, cfg)
	t.Cleanup(func() { _ = s.Close() })
	for path, want := range map[string]int{"/readyz": 503, "/healthz": 200, "/oauth2/sign_in": 200, "/oauth2/start/alpha": 503} {
		if w := fetch(h, path); w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestNeedsSession(t *testing.T) {
	for path, want := range map[string]bool{
		"/oauth2/start/x": true, "/oauth2/callback/x": true, "/oauth2/local/x": true, "/oauth2/sign_out": true,
		"/oauth2/userinfo": true, "/oauth2/backchannel_logout": true, "/oauth2/": true,
		"/oauth2/sign_in": false, "/oauth2/static/select.js": false, "/oauth2/jwks": false, "/oauth2/auth": false,
		"/": false, "/app": false, "/healthz": false, "/readyz": false, "/.well-known/jwks.json": false,
	} {
		if got := needsSession(path); got != want {
			t.Errorf("needsSession(%q) = %v", path, got)
		}
	}
}

// TestRedisTLS: the connection checks the server's certificate against
// ca_file and the server name, unless told not to.
func TestRedisTLS(t *testing.T) {
	certFile, keyFile := writeServerCert(t, "redis.test")
	r := redisserver.StartWith(t, redisserver.Options{TLSCertFile: certFile, TLSKeyFile: keyFile})
	for _, c := range []struct {
		name  string
		tls   RedisTLS
		ready bool
	}{
		{"ca_file and server_name", RedisTLS{Enabled: true, CAFile: certFile, ServerName: "redis.test"}, true},
		{"ca_file, the address's IP", RedisTLS{Enabled: true, CAFile: certFile}, true},
		{"wrong server_name", RedisTLS{Enabled: true, CAFile: certFile, ServerName: "other.test"}, false},
		{"system roots", RedisTLS{Enabled: true}, false},
		{"insecure_skip_verify", RedisTLS{Enabled: true, InsecureSkipVerify: true}, true},
		{"no tls", RedisTLS{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Providers: []providers.Config{providerConfig("alpha")},
				Session: SessionConfig{Store: "redis", Redis: RedisConfig{Address: r.Addr, TLS: c.tls,
					DialTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}}}
			s, h := signInServer(t, cfg)
			t.Cleanup(func() { _ = s.Close() })
			want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[c.ready]
			if w := fetch(h, "/readyz"); w.Code != want {
				t.Errorf("/readyz: %d, want %d", w.Code, want)
			}
			// The session cache's subscription connects the same way.
			rs := redisStoreOf(t, s)
			rs.Subscribe()
			if !c.ready {
				time.Sleep(300 * time.Millisecond)
				if rs.Subscribed() {
					t.Error("the session cache subscribed where the store cannot connect")
				}
				return
			}
			waitFor(t, 5*time.Second, "the session cache subscribed", rs.Subscribed)
			// A session makes the round trip.
			w := fetch(h, "/oauth2/start/alpha?rd=/")
			if w.Code != http.StatusFound {
				t.Fatalf("start: %d", w.Code)
			}
			if n, _ := redis.Int(r.Do("DBSIZE"), nil); n == 0 {
				t.Error("nothing was stored")
			}
		})
	}
}

// writeServerCert makes a self-signed certificate for name and 127.0.0.1,
// and returns its PEM files.
func writeServerCert(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// A client that hangs up while its session is read from Redis is not an
// outage: nothing is logged as an error, and nothing is answered.
func TestRedisCanceledRequestIsNoOutage(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r, withRedis(r))
	e.login("alpha", "alice", "/")
	var cookie *http.Cookie
	for _, c := range e.client.Jar.Cookies(mustParseURL(t, e.broker.URL)) {
		cookie = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/oauth2/auth", nil)
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	e.server.Handler().ServeHTTP(rec, req)
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "request canceled while its session was read") {
		t.Errorf("a canceled request was logged as a store failure, or not at all:\n%s", logs)
	}
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || len(rec.Header()["X-Auth-Request-User"]) != 0 {
		t.Errorf("a canceled request got an answer: %d %v", rec.Code, rec.Header())
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUnfinishedSignInsInRedis: sign-ins that never complete leave nothing
// in Redis: one abandoned at the IdP, one the IdP refuses
// (error=access_denied), one whose code the IdP does not accept (the
// spent-state mark is written only once the IdP accepted the code, and
// lives 10 minutes); only the pending-login cookies' secret, made once,
// is there, with no time to live.
func TestUnfinishedSignInsInRedis(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	for i := range 3 {
		b := newBrowser()
		cb := e.startLogin(b, "alpha", "alice", "/")
		q := cb.Query()
		switch i {
		case 0: // abandoned: the browser never comes back
			continue
		case 1:
			q.Del("code")
			q.Set("error", "access_denied")
		case 2:
			q.Set("code", "not-a-code-the-idp-issued")
		}
		cb.RawQuery = q.Encode()
		if resp := e.do(b, http.MethodGet, cb.String(), nil); resp.StatusCode < 400 || e.signedIn(b) {
			t.Fatalf("unfinished sign-in %d: %d, signed in %v", i, resp.StatusCode, e.signedIn(b))
		}
	}
	keys, _ := redis.Strings(r.Do("KEYS", "*"), nil)
	for _, k := range keys {
		if k != DefaultRedisKeyPrefix+"secret:"+pending.SecretName {
			ttl, _ := redis.Int64(r.Do("PTTL", k), nil)
			t.Errorf("unfinished sign-ins left %s (for %d ms)", k, ttl)
		}
	}
	t.Logf("keys after three unfinished sign-ins: %q", keys)
}

// TestRedisLoginCommands: what a login sends Redis (docs/sessions.md,
// "Keys"): 1 round trip, one script that checks the revocation mark,
// marks the state spent, indexes the new session and writes it, and no
// invalidation (nobody can have cached a new token). redis-server
// counts the script's commands too: 8 in all with one index key.
func TestRedisLoginCommands(t *testing.T) {
	r := redisserver.Start(t)
	e := newRedisEnv(t, r)
	if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound { // loads the script, makes the secret
		t.Fatalf("first login: %d %s", resp.StatusCode, body(resp))
	}
	b := newBrowser() // as a new browser: no session to load or end
	cb := e.startLogin(b, "alpha", "bob", "/")
	r.Do("CONFIG", "RESETSTAT")
	// MONITOR tells the commands a client sent from those a script ran
	// ("[0 lua]"): the round trips.
	mon, err := redis.Dial("tcp", r.Addr, redis.DialReadTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.Do("MONITOR"); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		for {
			line, err := redis.String(mon.Receive())
			if err != nil {
				return
			}
			if !strings.Contains(line, " lua] ") {
				lines <- line
			}
		}
	}()
	if resp := e.do(b, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %d %s", resp.StatusCode, body(resp))
	}
	r.Do("PING") // the monitor's last line
	var fromBroker []string
	timeout := time.After(5 * time.Second)
watch:
	for {
		select {
		case l, ok := <-lines:
			if !ok || strings.Contains(l, `"PING"`) {
				break watch
			}
			if _, cmd, ok := strings.Cut(l, `] "`); ok && !strings.HasPrefix(cmd, "CONFIG") {
				name, _, _ := strings.Cut(cmd, `"`)
				fromBroker = append(fromBroker, name)
			}
		case <-timeout:
			t.Fatal("the monitor did not see the PING")
		}
	}
	_ = mon.Close()
	if !slices.Equal(fromBroker, []string{"EVALSHA"}) {
		t.Errorf("a login's round trips: %q, want one EVALSHA", fromBroker)
	}
	calls := map[string]int{}
	info, _ := r.Do("INFO", "commandstats").([]byte)
	for line := range strings.SplitSeq(string(info), "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || name == "info" || name == "config|resetstat" || name == "monitor" || name == "ping" {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		calls[name] = n
	}
	want := map[string]int{
		"evalsha": 1,           // the one round trip: the script, which runs the revocation check,
		"zcount":  1, "set": 2, // the spent state's SET NX and the session's SET PXAT,
		"zadd": 1, "zremrangebyscore": 1, "zrange": 1, "pexpireat": 1, // and the index
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("a login's Redis commands: %v, want %v", calls, want)
	}
}
