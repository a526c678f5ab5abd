// Package urls is the broker's external origin (Origin: scheme, host and
// path prefix, as public_url or a request's proxyfix facts establish it)
// and what is built on it: the absolute URLs and paths of the broker's
// routes, the port, whether cookies must be Secure, and where a browser
// may be sent after signing in or out (SafeRedirect). Every absolute URL
// the broker builds (redirect_uri above all) comes from an Origin; no
// code reads Host or X-Forwarded-* to build one.
package urls

import (
	"net"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/redirect"
)

// Origin is the broker's external base: scheme, host and path prefix.
type Origin struct {
	Scheme string // "http" or "https"
	Host   string // host[:port]
	Prefix string // "" or "/path" without a trailing slash
	// RedirectHosts are the other hosts an absolute rd may name
	// (redirect_hosts; see SafeRedirect).
	RedirectHosts *redirect.Hosts
}

// Public is the origin of a validated public_url.
func Public(raw string) Origin {
	u, _ := url.Parse(raw)
	return Origin{Scheme: u.Scheme, Host: strings.ToLower(u.Host), Prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
}

// String returns scheme://host/prefix.
func (o Origin) String() string { return o.Scheme + "://" + o.Host + o.Prefix }

// URL returns the absolute URL of a broker path such as "/oauth2/callback/x".
func (o Origin) URL(path string) string { return o.String() + path }

// Path returns a broker path under the prefix, for links on the same origin.
func (o Origin) Path(path string) string { return o.Prefix + path }

// Port is the origin's port: explicit in Host, or the scheme's default.
func (o Origin) Port() string {
	if _, p, err := net.SplitHostPort(o.Host); err == nil {
		return p
	}
	if o.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Secure reports whether cookies must be Secure.
func (o Origin) Secure() bool { return o.Scheme == "https" }

// SafeRedirect returns rd when the browser may be sent there after signing
// in or out (RedirectAllowed), and the origin's root (under its prefix)
// otherwise.
func (o Origin) SafeRedirect(rd string) string {
	if o.RedirectAllowed(rd) {
		return rd
	}
	return o.Path("/")
}

// RedirectAllowed reports whether rd is a path on the broker's own origin,
// or an absolute URL that redirect_hosts (or the origin itself) allows
// (redirect.Allowed).
func (o Origin) RedirectAllowed(rd string) bool {
	return redirect.Allowed(rd, o.Scheme, o.Host, o.RedirectHosts)
}

// Hostname strips a port from host[:port], keeping IPv6 brackets off.
func Hostname(host string) string {
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
