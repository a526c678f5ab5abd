package broker

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/bearer"
	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// BenchmarkForwardAuthBearer is forward-auth for an API client: GET
// /oauth2/auth with Authorization: Bearer and an RS256 JWT access token
// (RFC 9068) of an in-process IdP whose keys the broker fetched once. The
// verified token is in the cache, as for a busy client: the SHA-256 of the
// token, a map lookup, then the rules and headers as for a session.
func BenchmarkForwardAuthBearer(b *testing.B) {
	srv, tokens := bearerBenchServer(b, 1)
	benchForwardAuthBearer(b, srv, tokens)
}

// BenchmarkForwardAuthBearerUncached is the same with every check a miss:
// two tokens alternate through a cache of one entry, so each request
// parses the JWS, verifies the RS256 signature (2048-bit key) and checks
// the claims.
func BenchmarkForwardAuthBearerUncached(b *testing.B) {
	srv, tokens := bearerBenchServer(b, 2)
	srv.live.Load().bearer = bearer.New(srv.Registry().All(), bearer.Options{CacheEntries: 1})
	benchForwardAuthBearer(b, srv, tokens)
}

// BenchmarkForwardAuthSessionCPU is BenchmarkForwardAuth with the
// process's CPU time per check reported too (cpu-ns/op), to compare with
// the bearer benchmarks on a machine whose wall times other work inflates.
func BenchmarkForwardAuthSessionCPU(b *testing.B) {
	srv, cookie := benchServer(b)
	defer reportCPU(b)()
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, nil)
}

// reportCPU starts counting the process's CPU time (user and system);
// the function it returns reports it per op as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchForwardAuthBearer(b *testing.B, srv *Server, tokens []string) {
	h := srv.Handler()
	warm := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
	warm.Header.Set("Authorization", "Bearer "+tokens[0])
	w := httptest.NewRecorder()
	h.ServeHTTP(w, warm) // discovery, keys
	if w.Code != http.StatusAccepted {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		reqs := make([]*http.Request, len(tokens))
		for i, tok := range tokens {
			reqs[i] = httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
			reqs[i].Header.Set("Authorization", "Bearer "+tok)
		}
		i := 0
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i++
			if w.Code != http.StatusAccepted || w.Header().Get(HeaderUser) != "alpha:svc-1" {
				b.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
		}
	})
}

// bearerBenchServer is a broker whose provider alpha (an in-process demo
// IdP behind the token-minting wrapper) accepts API tokens, and n tokens.
func bearerBenchServer(b *testing.B, n int) (*Server, []string) {
	b.Helper()
	tp := &hostileidp.IdP{}
	idpSrv := httptest.NewServer(tp)
	b.Cleanup(idpSrv.Close)
	h, err := demo.NewIdP(demo.IdPConfig{Issuer: idpSrv.URL, Title: "alpha", Users: demo.DemoUsers("alpha"),
		Clients: []demo.Client{{ID: "broker-alpha", Secret: clientSecret("alpha"), RedirectURIs: []string{"http://127.0.0.1/cb"}}}})
	if err != nil {
		b.Fatal(err)
	}
	tp.Next = h
	srv, err := New(Config{Providers: []providers.Config{{ID: "alpha", Issuer: idpSrv.URL, ClientID: "broker-alpha", ClientSecret: clientSecret("alpha"),
		APITokens: &providers.APITokensConfig{Audiences: []string{"api://alpha"}, Scopes: []string{"read"}}}}},
		Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	var tokens []string
	for i := range n {
		tokens = append(tokens, tp.Mint(map[string]any{"iss": idpSrv.URL, "sub": "svc-1", "aud": "api://alpha", "scope": "read",
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": strconv.Itoa(i), "groups": []string{"reporters"}}, "", "at+jwt"))
	}
	return srv, tokens
}
