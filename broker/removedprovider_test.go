package broker

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// TestForwardAuthRemovedProvider: after a reload removes a provider, its
// users' sessions end at their next request (docs/operations.md),
// forward-auth's included, on the whole path and on quickAuth's (the
// request log off), with the memory store's sessions and Redis's.
func TestForwardAuthRemovedProvider(t *testing.T) {
	r := redisserver.Start(t)
	for name, opts := range map[string][]envOption{
		"whole path":       nil,
		"quickAuth":        {withLogLevel(slog.LevelInfo)},
		"quickAuth, redis": {withLogLevel(slog.LevelInfo), withRedis(r)},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, opts...)
			bob := newBrowser()
			cb := e.startLogin(bob, "beta", "bob", "/")
			e.do(bob, http.MethodGet, cb.String(), nil)
			for range 2 { // the second from the session cache
				if resp := e.request(bob, http.MethodGet, "/oauth2/auth", nil); resp.StatusCode != http.StatusAccepted {
					t.Fatalf("before: %d", resp.StatusCode)
				}
			}
			cfg := runningConfig(e)
			cfg.Providers = cfg.Providers[:1]
			if err := e.server.Reload(cfg); err != nil {
				t.Fatal(err)
			}
			if resp := e.request(bob, http.MethodGet, "/oauth2/auth", nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("beta's user after beta was removed: forward-auth %d %v, want 401", resp.StatusCode, resp.Header.Values(HeaderUser))
			}
			if e.signedIn(bob) {
				t.Error("the session of a removed provider was not ended")
			}
		})
	}
}
