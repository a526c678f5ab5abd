package broker

import (
	"net/http"

	"github.com/oidc-broker/oidc-broker/providers"
)

// accessRequest describes the request an access decision is about: the
// request itself in proxy mode, or the one a trusted proxy describes on the
// forward-auth endpoint.
type accessRequest struct {
	Method string
	Host   string // host without port
	Path   string
}

// decision is the outcome of the access rules.
type decision int

const (
	unauthenticated decision = iota // sign in first (401 / redirect)
	allowed                         // signed in and allowed
	public                          // no sign-in needed
	forbidden                       // signed in, not allowed (403)
)

// access decides a request for id (nil when nobody is signed in). Until
// access rules are configured, every signed-in user is allowed.
func (s *Server) access(_ accessRequest, id *providers.Identity) (decision, string) {
	if id == nil {
		return unauthenticated, "not signed in"
	}
	return allowed, ""
}

func identityPtr(id providers.Identity, ok bool) *providers.Identity {
	if !ok {
		return nil
	}
	return &id
}

// requestOf describes r itself.
func requestOf(r *http.Request) accessRequest {
	return accessRequest{Method: r.Method, Host: hostname(r.Host), Path: r.URL.Path}
}
