package broker

import (
	"net/http"
)

// handleAuth is the forward-auth endpoint (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth): 202 with the identity headers when the
// access rules allow the request, 401 when a sign-in is needed, 403 when the
// signed-in user is not allowed.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, signedIn := s.sessions.identity(r.Context())
	d, reason := s.access(s.describedRequest(r), identityPtr(id, signedIn))
	switch d {
	case public, allowed:
		if signedIn {
			s.relayIdentity(w.Header(), r, id, "")
		}
		w.WriteHeader(http.StatusAccepted)
	case forbidden:
		s.log.Info("access denied", "user", id.User(), "reason", reason, "client", clientAddr(r))
		w.WriteHeader(http.StatusForbidden)
	default:
		w.WriteHeader(http.StatusUnauthorized)
	}
}

// describedRequest is the request a forward-auth call asks about. Until the
// proxies' request-describing headers are supported, it is unknown, and
// only the session decides.
func (s *Server) describedRequest(*http.Request) accessRequest { return accessRequest{} }
