package broker

import "github.com/oidc-broker/oidc-broker/broker/redirect"

// Where the browser may go after signing in or out: package redirect.

// safeRedirect returns rd when the browser may be sent there after signing
// in or out (redirect.Allowed), and the origin's root (under its prefix)
// otherwise.
func (o origin) safeRedirect(rd string) string {
	if o.redirectAllowed(rd) {
		return rd
	}
	return o.Path("/")
}

// redirectAllowed reports whether rd is a path on the broker's own origin,
// or an absolute URL that redirect_hosts (or the origin itself) allows.
func (o origin) redirectAllowed(rd string) bool {
	return redirect.Allowed(rd, o.Scheme, o.Host, o.redirectHosts)
}
