package broker

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServerConfig(t *testing.T) {
	const provider = "providers:\n  - {id: a, issuer: 'https://a', client_id: c, client_secret: s}\n"
	cfg, err := ParseConfig("b.yaml", []byte("server:\n  read_timeout: 15m\n  max_header_bytes: 16384\n"+provider), lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	h := http.NotFoundHandler()
	got := cfg.Server.NewHTTPServer("127.0.0.1:1", h)
	want := &http.Server{Addr: "127.0.0.1:1", Handler: h, ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: 15 * time.Minute,
		IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: 16384}
	if got.Addr != want.Addr || got.ReadHeaderTimeout != want.ReadHeaderTimeout || got.ReadTimeout != want.ReadTimeout ||
		got.IdleTimeout != want.IdleTimeout || got.MaxHeaderBytes != want.MaxHeaderBytes || got.WriteTimeout != 0 {
		t.Errorf("server %+v, want %+v", got, want)
	}
	def := ServerConfig{}.NewHTTPServer("", h)
	if def.ReadHeaderTimeout != 10*time.Second || def.ReadTimeout != time.Minute || def.IdleTimeout != 3*time.Minute ||
		def.MaxHeaderBytes != 64<<10 || def.WriteTimeout != 0 {
		t.Errorf("defaults: %+v", def)
	}

	cases := []struct{ name, yaml, want string }{
		{"negative", "server: {read_timeout: -1s}\n", "line 1: server.read_timeout: -1s must be at least 1s"},
		{"below a second", "server:\n  idle_timeout: 500ms\n", "line 2: server.idle_timeout: 500ms must be at least 1s"},
		{"header timeout beyond the request's", "server:\n  read_header_timeout: 2m\n", "line 2: server.read_header_timeout: 2m0s is longer than server.read_timeout (1m0s)"},
		{"header limit too small", "server:\n  max_header_bytes: 100\n", "line 2: server.max_header_bytes: 100 must be from 4096 to 1048576"},
		{"header limit too large", "server:\n  max_header_bytes: 16777216\n", "server.max_header_bytes: 16777216 must be from"},
		{"unknown key", "server:\n  write_timeout: 1m\n", "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("b.yaml", []byte(c.yaml+provider), lookupIn(nil))
			var cerr *ConfigError
			if !errors.As(err, &cerr) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
