package broker

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/redirect"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// origin is the broker's external base: scheme, host and path prefix.
type origin struct {
	Scheme string // "http" or "https"
	Host   string // host[:port]
	Prefix string // "" or "/path" without a trailing slash
	// redirectHosts are the other hosts an absolute rd may name
	// (redirect_hosts; see safeRedirect).
	redirectHosts *redirect.Hosts
}

// String returns scheme://host/prefix.
func (o origin) String() string { return o.Scheme + "://" + o.Host + o.Prefix }

// URL returns the absolute URL of a broker path such as "/oauth2/callback/x".
func (o origin) URL(path string) string { return o.String() + path }

// Path returns a broker path under the prefix, for links on the same origin.
func (o origin) Path(path string) string { return o.Prefix + path }

// port is the origin's port: explicit in Host, or the scheme's default.
func (o origin) port() string {
	if _, p, err := net.SplitHostPort(o.Host); err == nil {
		return p
	}
	if o.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Secure reports whether cookies must be Secure.
func (o origin) Secure() bool { return o.Scheme == "https" }

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
		o.redirectHosts = s.redirects
		return o
	}
	o := origin{Scheme: f.Scheme, Host: f.Host, Prefix: f.Prefix, redirectHosts: s.redirects}
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
	u, _ := url.Parse(raw)
	return &origin{Scheme: u.Scheme, Host: strings.ToLower(u.Host), Prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
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

// hostname strips a port from host[:port], keeping IPv6 brackets off.
func hostname(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.Index(host, "]"); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}
