package broker

// Where the browser may go after signing in or out: urls.Origin.SafeRedirect
// (package redirect).

// safeRedirect returns rd when the browser may be sent there after signing
// in or out, and the origin's root (under its prefix) otherwise.
func (o origin) safeRedirect(rd string) string { return o.SafeRedirect(rd) }

// redirectAllowed reports whether rd is a path on the broker's own origin,
// or an absolute URL that redirect_hosts (or the origin itself) allows.
func (o origin) redirectAllowed(rd string) bool { return o.RedirectAllowed(rd) }
