package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
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

// basicRoute is one entry of basic_auth_paths: a subtree when the path
// ends in "/", else that path alone.
type basicRoute struct {
	path     string
	provider string
}

func (b basicRoute) matches(p string) bool {
	if strings.HasSuffix(b.path, "/") {
		return strings.HasPrefix(p, b.path)
	}
	return p == b.path
}

// basicRoutes collects the local providers' Basic paths, the longest first
// so that the most specific entry wins.
func basicRoutes(cfgs []providers.Config) []basicRoute {
	var routes []basicRoute
	for _, c := range cfgs {
		if !c.SignsInWithPassword() {
			continue
		}
		for _, p := range c.BasicAuthPaths {
			routes = append(routes, basicRoute{path: p, provider: c.ID})
		}
	}
	slices.SortStableFunc(routes, func(a, b basicRoute) int { return len(b.path) - len(a.path) })
	return routes
}

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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if forwardAuth {
			// The described path is escaped; an undecodable one matches nothing.
			p, _ = url.PathUnescape(s.describedRequest(r).Path)
		}
		route, ok := s.basicRouteFor(p)
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
		id, status, wait := s.basicIdentity(r, route)
		switch {
		case status == http.StatusTooManyRequests && forwardAuth:
			basicRefusal(w, http.StatusUnauthorized, "too many attempts", wait)
		case status == http.StatusTooManyRequests:
			basicRefusal(w, status, "too many attempts", wait)
		case status == http.StatusForbidden:
			basicRefusal(w, status, "HTTP Basic is accepted over https only", 0)
		case status == http.StatusServiceUnavailable:
			basicRefusal(w, status, "sign-in is unavailable at the moment", wait)
		case status != http.StatusOK:
			basicRefusal(w, status, "invalid credentials", 0)
		default:
			r.Header.Del("Authorization") // the password is the broker's business, not the app's
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), basicIdentityKey{}, id)))
		}
	})
}

// basicIdentity checks the request's Basic credentials with route's
// provider. It returns 200 and the identity, or the status to refuse with.
func (s *Server) basicIdentity(r *http.Request, route basicRoute) (providers.Identity, int, time.Duration) {
	o := s.originOf(r)
	if o.Scheme != "https" && !isLoopbackHost(hostname(o.Host)) {
		s.audit(r.Context(), auditEntry{event: audit.BasicRefused, provider: route.provider, reason: audit.Because(audit.PlainHTTP, "plain http")})
		return providers.Identity{}, http.StatusForbidden, 0
	}
	p, ok := s.registry.Get(route.provider)
	pa, isPassword := p.(providers.PasswordAuthenticator)
	if !ok || !isPassword {
		s.log.ErrorContext(r.Context(), "basic auth: not a password provider", "provider", route.provider)
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	username, password, ok := r.BasicAuth()
	if !ok {
		s.audit(r.Context(), auditEntry{event: audit.BasicRefused, provider: route.provider, reason: audit.Because(audit.BadRequest, "malformed credentials")})
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	res, wait, err := s.checkPassword(r, route.provider, pa, username, password)
	var unavailable *providers.UnavailableError
	switch {
	case wait > 0:
		return providers.Identity{}, http.StatusTooManyRequests, wait
	case errors.As(err, &unavailable): // the directory is down: not the client's fault
		s.audit(r.Context(), auditEntry{event: audit.BasicRefused, provider: route.provider, reason: audit.Because(audit.IdPUnavailable, "provider unavailable"), err: err})
		return providers.Identity{}, http.StatusServiceUnavailable, max(0, unavailable.RetryAfter.Sub(s.now()))
	case err != nil:
		s.audit(r.Context(), auditEntry{event: audit.BasicRefused, provider: route.provider, reason: audit.Because(audit.BadCredentials, "invalid credentials"),
			after: []any{"username", truncate(username, 64)}})
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	s.log.DebugContext(r.Context(), "basic auth", "provider", route.provider, "user", res.Identity.User(), "client", clientAddr(r))
	return res.Identity, http.StatusOK, 0
}

func (s *Server) basicRouteFor(p string) (basicRoute, bool) {
	if p == "" {
		return basicRoute{}, false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	for _, b := range s.local.basic {
		if b.matches(clean) {
			return b, true
		}
	}
	return basicRoute{}, false
}

func basicRefusal(w http.ResponseWriter, status int, msg string, wait time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if wait > 0 {
		h.Set("Retry-After", fmt.Sprint(retryAfterSeconds(wait)))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="oidc-broker", charset="UTF-8"`)
	}
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// basicAuthProblems: each path of a password provider is a clean path
// outside the broker's own routes, and leads to one provider only.
func basicAuthProblems(cfgs []providers.Config) []error {
	var errs []error
	owner := map[string]int{}
	for i, c := range cfgs {
		if !c.SignsInWithPassword() {
			continue
		}
		for j, p := range c.BasicAuthPaths {
			if err := checkBasicAuthPath(p); err != nil {
				errs = append(errs, fmt.Errorf("providers[%d].basic_auth_paths[%d]: %q %w", i, j, p, err))
			}
			if k, dup := owner[p]; dup && k != i {
				errs = append(errs, fmt.Errorf("providers[%d].basic_auth_paths[%d]: %q is already a Basic path of providers[%d]", i, j, p, k))
				continue
			}
			owner[p] = i
		}
	}
	return errs
}

// checkBasicAuthPath accepts an absolute, clean path outside the broker's
// own /oauth2/ routes: "/api/" (the subtree) or "/metrics" (that path).
func checkBasicAuthPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New("must start with /")
	case strings.ContainsAny(p, "?#") || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("must be a path without query, fragment, spaces or control characters")
	case strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") || strings.Contains(p, "//"):
		return errors.New("must be a clean path (no ., .. or //)")
	case p == "/oauth2" || strings.HasPrefix(p, "/oauth2/"):
		return errors.New("must not be under /oauth2/, the broker's own routes")
	}
	return nil
}

// basicAuthWarnings: Basic sends the password with every request.
func (c Config) basicAuthWarnings() []string {
	for _, p := range c.Providers {
		if len(p.BasicAuthPaths) > 0 && strings.HasPrefix(c.PublicURL, "http://") {
			return []string{"providers: basic_auth_paths are set but public_url is http: HTTP Basic is refused over http except on loopback"}
		}
	}
	return nil
}
