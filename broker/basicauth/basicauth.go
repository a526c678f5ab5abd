// Package basicauth is HTTP Basic for API clients, on the paths a local or
// ldap provider names in basic_auth_paths (docs/local-users.md): which paths
// accept Basic, the checks of that setting, and the check of the credentials
// with the provider, under the login form's rate limits. The broker wires it
// to its requests (the identity in the context, the audit trail).
package basicauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Route is one entry of basic_auth_paths: a subtree when the path ends in
// "/", else that path alone.
type Route struct {
	Path     string
	Provider string
}

// Matches reports whether the clean path p is Route's.
func (b Route) Matches(p string) bool {
	if strings.HasSuffix(b.Path, "/") {
		return strings.HasPrefix(p, b.Path)
	}
	return p == b.Path
}

// Routes are the Basic paths of a configuration, the longest first.
type Routes []Route

// RoutesOf collects the password providers' Basic paths, the longest first
// so that the most specific entry wins.
func RoutesOf(cfgs []providers.Config) Routes {
	var routes Routes
	for _, c := range cfgs {
		if !c.SignsInWithPassword() {
			continue
		}
		for _, p := range c.BasicAuthPaths {
			routes = append(routes, Route{Path: p, Provider: c.ID})
		}
	}
	slices.SortStableFunc(routes, func(a, b Route) int { return len(b.Path) - len(a.Path) })
	return routes
}

// For is the route that accepts Basic on the (decoded) request path p, if
// any; p is cleaned first, so "/api/../x" is "/x".
func (rs Routes) For(p string) (Route, bool) {
	if p == "" {
		return Route{}, false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	for _, b := range rs {
		if b.Matches(clean) {
			return b, true
		}
	}
	return Route{}, false
}

// Checker checks Basic credentials with a route's provider. The broker
// fills its fields; they are what this package needs of the broker.
type Checker struct {
	// Provider is the provider of that id in the current registry.
	Provider func(id string) (providers.Provider, bool)
	// CheckPassword checks username and password with pa under the login
	// form's rate limits: a positive wait means a limit is reached.
	CheckPassword func(r *http.Request, provider string, pa providers.PasswordAuthenticator, username, password string) (*providers.Result, time.Duration, error)
	// Secure reports whether r came over https or to a loopback origin.
	Secure func(r *http.Request) bool
	// Refused writes the audit line of a refusal.
	Refused func(ctx context.Context, provider string, reason audit.Reason, err error, after []any)
	// Client is the request's client address, for the debug log.
	Client func(r *http.Request) string
	Log    *slog.Logger
	Now    func() time.Time
}

// Identity checks the request's Basic credentials with route's provider.
// It returns 200 and the identity, or the status to refuse with (and how
// long the client should wait).
func (c Checker) Identity(r *http.Request, route Route) (providers.Identity, int, time.Duration) {
	if !c.Secure(r) {
		c.Refused(r.Context(), route.Provider, audit.Because(audit.PlainHTTP, "plain http"), nil, nil)
		return providers.Identity{}, http.StatusForbidden, 0
	}
	p, ok := c.Provider(route.Provider)
	pa, isPassword := p.(providers.PasswordAuthenticator)
	if !ok || !isPassword {
		c.Log.ErrorContext(r.Context(), "basic auth: not a password provider", "provider", route.Provider)
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	username, password, ok := r.BasicAuth()
	if !ok {
		c.Refused(r.Context(), route.Provider, audit.Because(audit.BadRequest, "malformed credentials"), nil, nil)
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	res, wait, err := c.CheckPassword(r, route.Provider, pa, username, password)
	var unavailable *providers.UnavailableError
	switch {
	case wait > 0:
		return providers.Identity{}, http.StatusTooManyRequests, wait
	case errors.As(err, &unavailable): // the directory is down: not the client's fault
		c.Refused(r.Context(), route.Provider, audit.Because(audit.IdPUnavailable, "provider unavailable"), err, nil)
		return providers.Identity{}, http.StatusServiceUnavailable, max(0, unavailable.RetryAfter.Sub(c.Now()))
	case err != nil:
		c.Refused(r.Context(), route.Provider, audit.Because(audit.BadCredentials, "invalid credentials"), nil,
			[]any{"username", audit.Clip(username, 64)})
		return providers.Identity{}, http.StatusUnauthorized, 0
	}
	c.Log.DebugContext(r.Context(), "basic auth", "provider", route.Provider, "user", res.Identity.User(), "client", c.Client(r))
	return res.Identity, http.StatusOK, 0
}

// Refuse answers an API client in JSON: msg as the error, Retry-After when
// wait is positive, and the Basic challenge with a 401.
func Refuse(w http.ResponseWriter, status int, msg string, wait time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if wait > 0 {
		h.Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="oidc-broker", charset="UTF-8"`)
	}
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}
