package broker

import (
	"net/http"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/urls"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// origin is the broker's external base (urls.Origin: scheme, host, path
// prefix, and the URLs built on it).
type origin struct{ urls.Origin }

// port is the origin's port: explicit in Host, or the scheme's default.
func (o origin) port() string { return o.Port() }

// originOf is the one function that decides the broker's external origin
// for a request. Every absolute URL the broker builds (redirect_uri above
// all) comes from here: public_url when configured, else the transport
// facts that proxyfix established (the connection itself unless forwarding
// headers are trusted through explicit hop counts). No other code reads Host
// or X-Forwarded-* to build a URL.
func (s *Server) originOf(r *http.Request) origin {
	if s.public != nil {
		return s.originFrom(proxyfix.Facts{})
	}
	return s.originFrom(proxyfix.FromRequest(r))
}

// originFrom is originOf for a request whose facts are f.
func (s *Server) originFrom(f proxyfix.Facts) origin {
	if s.public != nil {
		o := *s.public
		o.RedirectHosts = s.redirects
		return o
	}
	o := origin{urls.Origin{Scheme: f.Scheme, Host: f.Host, Prefix: f.Prefix, RedirectHosts: s.redirects}}
	if s.cfg.ForceHTTPS {
		o.Scheme = "https"
	}
	return o
}

// parsePublicURL turns a validated public_url into an origin.
func parsePublicURL(raw string) *origin {
	if raw == "" {
		return nil
	}
	return &origin{urls.Public(raw)}
}

// hostAllowed reports whether host (possibly with a port) matches the
// allowed_hosts list. An empty list allows every host.
func hostAllowed(list []access.HostPattern, host string) bool {
	return len(list) == 0 || access.AnyHost(list, access.Hostname(host))
}

// compileHosts parses a validated host list.
func compileHosts(list []string) []access.HostPattern {
	var out []access.HostPattern
	for _, h := range list {
		p, _ := access.ParseHostPattern(h)
		out = append(out, p)
	}
	return out
}

// hostname strips a port from host[:port] (urls.Hostname).
func hostname(host string) string { return urls.Hostname(host) }
