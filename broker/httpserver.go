package broker

import "github.com/oidc-broker/oidc-broker/broker/httpserver"

// ServerConfig is the `server` section: the HTTP server's timeouts and
// header limit (httpserver.Config). Its NewHTTPServer builds every server
// in front of the broker's handlers:
//
//	hs := cfg.Server.NewHTTPServer(cfg.Listen, mux)
//	log.Fatal(hs.ListenAndServe())
type ServerConfig = httpserver.Config

// Defaults of ServerConfig.
const (
	DefaultReadHeaderTimeout = httpserver.DefaultReadHeaderTimeout
	DefaultReadTimeout       = httpserver.DefaultReadTimeout
	DefaultIdleTimeout       = httpserver.DefaultIdleTimeout
	DefaultMaxHeaderBytes    = httpserver.DefaultMaxHeaderBytes
)
