package broker

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

// pathReadable reports whether the path of a request, as the access rules
// will decide it, decodes to text that every app reads the same way
// (access.Readable); entry answers 400 otherwise.
//
// u is the request's URL after the external prefix, whose Path net/http
// decoded. On forward-auth (forwardAuth) the request is the one a trusted
// proxy describes: its URI is judged when describedTarget would read it
// (one value, from a peer in trusted_proxies.from), and a URI that does
// not decode at all gets 400 too. The query is not judged: apps decode it
// into values, not into a route.
//
// It allocates nothing.
func (s *Server) pathReadable(r *http.Request, u *url.URL, forwardAuth bool) bool {
	return s.pathReadableOf(r, u, forwardAuth, forwardAuth && s.fix.PeerListed(r))
}

// pathReadableOf is pathReadable with whether the direct peer is in
// trusted_proxies.from (listed) known.
func (s *Server) pathReadableOf(r *http.Request, u *url.URL, forwardAuth, listed bool) bool {
	if !forwardAuth {
		return access.Readable(u.Path)
	}
	v, ok := oneValue(r.Header, hdrOriginalURI, hdrForwardedURI)
	if !ok || !listed {
		return true // not read (describedTarget): the rules take the request as unknown
	}
	if i := strings.IndexAny(v, "?#"); i >= 0 {
		v = v[:i]
	}
	return access.ReadableEscaped(v)
}
