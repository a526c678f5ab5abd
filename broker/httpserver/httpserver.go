// Package httpserver is the HTTP server every listener of the broker runs
// on: the `server` section's read and idle timeouts and header limit
// (Config), its checks, and the http.Server built from it (NewHTTPServer),
// deliberately without a write timeout.
package httpserver

import (
	"fmt"
	"net/http"
	"time"
)

// Config is the `server` section: how long the HTTP server waits for
// a client, and how large a request header may be (docs/config.md). The
// zero value is the defaults. The binary applies it to its listener; an
// embedding program gets the same server from NewHTTPServer.
//
// There is deliberately no write timeout: net/http's WriteTimeout would cut
// every response that takes longer, streamed downloads, long polling and
// server-sent events from the upstreams among them. The read timeouts cut
// only a client that is slow to send its request: net/http clears the
// connection's read deadline once a request's body has been read, and
// every deadline when a handler takes over the connection (Hijack, as the
// reverse proxy does for WebSockets), so an open WebSocket and a slow
// response are never cut.
type Config struct {
	// ReadHeaderTimeout bounds the arrival of a request's header, and a new
	// connection's wait for its first request. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds the arrival of a whole request, header and body.
	// A body that stalls is cut at this point, and so is an upload to an
	// upstream that takes longer (raise it for large uploads over slow
	// links; behind a forward-auth proxy bodies never reach the broker).
	// Default 1m.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Default 3m: longer than the proxies in front keep
	// idle connections to the broker (nginx 60s, Traefik and Go's
	// transport 90s, Caddy 2m), so that they close them first and never
	// send a request on a connection the broker is closing.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's header (net/http allows 4 KiB
	// more); a larger one gets 431. Default 64 KiB; from 4 KiB to 1 MiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 3 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// Bounds of Config's settings.
const (
	minServerTimeout  = time.Second
	minMaxHeaderBytes = 4 << 10
	maxMaxHeaderBytes = 1 << 20
)

// NewHTTPServer returns an http.Server for h on addr with c's timeouts and
// header limit (the defaults for zero fields) and no write timeout. Every
// server in front of the broker's handlers should be built by it:
//
//	hs := cfg.Server.NewHTTPServer(cfg.Listen, mux)
//	log.Fatal(hs.ListenAndServe())
func (c Config) NewHTTPServer(addr string, h http.Handler) *http.Server {
	c = c.withDefaults()
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes}
}

func (c Config) withDefaults() Config {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return c
}

// Problems checks the section: no timeout below a second (none can be
// turned off), a header timeout within the request timeout, a sane header
// limit. Each message starts with the setting's YAML path.
func (c Config) Problems() []error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if f.d < 0 || (f.d > 0 && f.d < minServerTimeout) {
			errs = append(errs, fmt.Errorf("server.%s: %s must be at least %s (leave it out for the default)", f.name, f.d, minServerTimeout))
		}
	}
	if d := c.withDefaults(); len(errs) == 0 && d.ReadHeaderTimeout > d.ReadTimeout {
		errs = append(errs, fmt.Errorf("server.read_header_timeout: %s is longer than server.read_timeout (%s), which bounds the whole request", d.ReadHeaderTimeout, d.ReadTimeout))
	}
	if n := c.MaxHeaderBytes; n != 0 && (n < minMaxHeaderBytes || n > maxMaxHeaderBytes) {
		errs = append(errs, fmt.Errorf("server.max_header_bytes: %d must be from %d to %d", n, minMaxHeaderBytes, maxMaxHeaderBytes))
	}
	return errs
}
