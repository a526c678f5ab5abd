package broker

import (
	"net/http"
	"testing"

	"github.com/oidc-broker/oidc-broker/e2e/redisserver"
)

// BenchmarkForwardAuthRedis is BenchmarkForwardAuth with the session in a
// real redis-server on loopback (one GET per check: no idle timeout, so
// nothing is written). Run both side by side:
//
//	go test ./broker -run '^$' -bench 'ForwardAuth(Redis)?$'
func BenchmarkForwardAuthRedis(b *testing.B) {
	r := redisserver.Start(b)
	srv, cookie := benchServer(b, func(c *Config) {
		c.Session.Store = "redis"
		c.Session.Redis = RedisConfig{Address: r.Addr}
	})
	b.Cleanup(func() { _ = srv.Close() })
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, nil)
}
