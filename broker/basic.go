package broker

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/basicauth"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/providers"
)

// HTTP Basic for API clients, on the paths a local or ldap provider names in
// basic_auth_paths (docs/local-users.md). A request with Basic credentials
// on such a path is authenticated by that provider (htpasswd, directory), with
// the login form's rate limits, and is then signed in as that user for this
// request only: no session is created or read. The access rules decide
// afterwards, as for a session. On any other path Basic credentials are
// ignored (and passed to the app untouched, as before).

// basicIdentityKey carries the identity Basic established, in the
// request's context.
type basicIdentityKey struct{}

// requestIdentity is who the request is signed in as: the identity of
// valid Basic credentials on a Basic path (explicit credentials win over a
// session cookie), else the session's. When the session could not be read
// (the store is down) it returns errSessionStore: who the user is is then
// unknown, and the caller answers 503 unless the access rules find the
// route public without a user.
func (s *Server) requestIdentity(r *http.Request) (providers.Identity, bool, error) {
	id, _, ok, err := s.requestIdentityHeaders(r)
	return id, ok, err
}

// requestIdentityHeaders is requestIdentity with, when the identity is that
// of the session entry read for forward-auth, its header values as made
// when the session was decoded (relay); nil otherwise.
func (s *Server) requestIdentityHeaders(r *http.Request) (providers.Identity, *relay.Headers, bool, error) {
	if id, ok := r.Context().Value(basicIdentityKey{}).(providers.Identity); ok {
		return id, nil, true, nil
	}
	if c, ok := r.Context().Value(bearerKey{}).(*bearerCredential); ok { // apiclients.go
		return c.id, c.pre, true, nil
	}
	if info := requestInfoFrom(r.Context()); info != nil && info.readOnly { // entry read the session (forward-auth)
		if info.peeked == nil {
			return providers.Identity{}, nil, false, nil
		}
		h, _ := info.peeked.Derived().(*relay.Headers) // made by relayHeadersOf; nil: made anew
		return info.peeked.ID(), h, true, nil
	}
	if !s.sessions.Available(r.Context()) {
		return providers.Identity{}, nil, false, errSessionStore
	}
	id, ok := s.sessionIdentity(r) // refresh.go: renews expired tokens
	return id, nil, ok, nil
}

// withBasicAuth authenticates Basic credentials on the Basic paths before
// next (the proxy, or the forward-auth endpoint, which asks about the
// request its proxy describes). Refusals are JSON for API clients: 401 for
// wrong credentials, 429 with Retry-After when a rate limit is reached (401
// with Retry-After on forward-auth, because nginx's auth_request treats
// any other status as an error), 403 for Basic over plain http to a
// non-loopback origin, 503 while the provider is unavailable (an LDAP
// directory that does not answer).
func (s *Server) withBasicAuth(next http.Handler, forwardAuth bool) http.Handler {
	if len(s.local.basic) == 0 {
		return next
	}
	check := s.basicChecker()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if forwardAuth {
			// The described path is escaped; an undecodable one matches nothing.
			p, _ = url.PathUnescape(s.describedRequest(r).Path)
		}
		route, ok := s.local.basic.For(p)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Authorization")
		auth := r.Header.Get("Authorization")
		if len(auth) < 6 || !strings.EqualFold(auth[:6], "Basic ") {
			next.ServeHTTP(w, r)
			return
		}
		id, status, wait := check.Identity(r, route)
		switch {
		case status == http.StatusTooManyRequests && forwardAuth:
			basicauth.Refuse(w, http.StatusUnauthorized, "too many attempts", wait)
		case status == http.StatusTooManyRequests:
			basicauth.Refuse(w, status, "too many attempts", wait)
		case status == http.StatusForbidden:
			basicauth.Refuse(w, status, "HTTP Basic is accepted over https only", 0)
		case status == http.StatusServiceUnavailable:
			basicauth.Refuse(w, status, "sign-in is unavailable at the moment", wait)
		case status != http.StatusOK:
			basicauth.Refuse(w, status, "invalid credentials", 0)
		default:
			r.Header.Del("Authorization") // the password is the broker's business, not the app's
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), basicIdentityKey{}, id)))
		}
	})
}

// basicChecker is what basicauth needs of s to check credentials.
func (s *Server) basicChecker() basicauth.Checker {
	return basicauth.Checker{
		Provider:      func(id string) (providers.Provider, bool) { return s.registry.Get(id) },
		CheckPassword: s.checkPassword,
		Secure: func(r *http.Request) bool {
			o := s.originOf(r)
			return o.Scheme == "https" || isLoopbackHost(hostname(o.Host))
		},
		Refused: func(ctx context.Context, provider string, reason audit.Reason, err error, after []any) {
			s.audit(ctx, auditEntry{event: audit.BasicRefused, provider: provider, reason: reason, err: err, after: after})
		},
		Client: clientAddr,
		Log:    s.log,
		Now:    s.now,
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
