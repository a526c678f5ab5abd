package broker

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// BenchmarkForwardAuthRedis is BenchmarkForwardAuth with the session in a
// real redis-server on loopback, found in the session cache: once
// subscribed, a check reads no Redis (no idle timeout, so nothing is
// written). Run them side by side, with the cache-miss variant below:
//
//	go test ./broker -run '^$' -bench 'ForwardAuth(Redis)?(Uncached)?$'
func BenchmarkForwardAuthRedis(b *testing.B) {
	srv, cookie := redisBenchServer(b, nil)
	warmSessionCache(b, srv, cookie)
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, nil)
}

// BenchmarkForwardAuthRedisUncached is the same with session.cache_ttl 0:
// every check is a GET (one round trip to Redis) and a decoding, which the
// decode cache answers.
func BenchmarkForwardAuthRedisUncached(b *testing.B) {
	srv, cookie := redisBenchServer(b, new(time.Duration(0)))
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, nil)
}

func redisBenchServer(b testing.TB, cacheTTL *time.Duration) (*Server, *http.Cookie) {
	r := redisserver.Start(b)
	srv, cookie := benchServer(b, func(c *Config) {
		c.Session.Store = "redis"
		c.Session.Redis = RedisConfig{Address: r.Addr}
		c.Session.CacheTTL = cacheTTL
	})
	b.Cleanup(func() { _ = srv.Close() })
	return srv, cookie
}

// warmSessionCache makes srv subscribe and cache the session of cookie
// before the clock starts.
func warmSessionCache(b testing.TB, srv *Server, cookie *http.Cookie) {
	rs := redisStoreOf(b, srv)
	deadline := time.Now().Add(5 * time.Second)
	for {
		req := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
		req.AddCookie(cookie)
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
		if rs.Cached(cookie.Value) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the session was not cached within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
