package httpserver

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewHTTPServerDefaults(t *testing.T) {
	h := http.NotFoundHandler()
	s := Config{ReadTimeout: 15 * time.Minute}.NewHTTPServer("127.0.0.1:1", h)
	if s.Addr != "127.0.0.1:1" || s.ReadHeaderTimeout != DefaultReadHeaderTimeout || s.ReadTimeout != 15*time.Minute ||
		s.IdleTimeout != DefaultIdleTimeout || s.MaxHeaderBytes != DefaultMaxHeaderBytes || s.WriteTimeout != 0 {
		t.Errorf("server %+v", s)
	}
}

func TestProblems(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{}, ""},
		{Config{ReadTimeout: -time.Second}, "server.read_timeout: -1s must be at least 1s"},
		{Config{IdleTimeout: 500 * time.Millisecond}, "server.idle_timeout: 500ms must be at least 1s"},
		{Config{ReadHeaderTimeout: 2 * time.Minute}, "server.read_header_timeout: 2m0s is longer than server.read_timeout (1m0s)"},
		{Config{MaxHeaderBytes: 100}, "server.max_header_bytes: 100 must be from 4096 to 1048576"},
	}
	for _, c := range cases {
		errs := c.c.Problems()
		if c.want == "" {
			if len(errs) != 0 {
				t.Errorf("%+v: %v", c.c, errs)
			}
			continue
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.c, errs, c.want)
		}
	}
}
