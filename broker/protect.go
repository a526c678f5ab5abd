package broker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The embedding API: a Go program serves Handler() at /oauth2/ of its own
// mux and puts its handlers behind Require (one rule) or Protect (the
// configured routes and default). Both run the same middleware and the
// same access decision as the broker's reverse proxy, which is itself
// served through the same guard (routes in server.go).

// identityKey holds, in a request's context, the identity of the user a
// guard let through.
type identityKey struct{}

// IdentityFrom returns the identity of the signed-in user of a request
// that passed Require or Protect (or reached an upstream through the
// broker). ok is false when nobody is signed in, which happens only on
// public routes.
func IdentityFrom(ctx context.Context) (id providers.Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(providers.Identity)
	return id, ok
}

// Require returns middleware that serves next only to a signed-in user whom
// rule allows, with the identity in the request's context (IdentityFrom).
// Someone not signed in is sent to the sign-in page (a browser) or gets 401
// (an API client); a user the rule refuses gets 403. A Public rule lets
// everyone through.
//
// Require panics when rule is invalid (public with conditions, a malformed
// user, an unknown provider): like a route pattern, the rule is part of
// the program, not input.
func (s *Server) Require(rule AccessRule) func(http.Handler) http.Handler {
	g := s.live.Load()
	if errs := rule.Problems("", providerIDs(g.cfg.Providers)); len(errs) > 0 {
		panic("broker: Require: " + errors.Join(errs...).Error())
	}
	p := access.Required(rule).WithClock(g.opts.Now)
	return func(next http.Handler) http.Handler { return s.protected(p.DecideStepUp, next) }
}

// Protect serves h behind the configured access rules (routes and
// default), as the broker serves its upstreams: the way to put a whole
// in-process app behind the broker.
func (s *Server) Protect(h http.Handler) http.Handler { return s.protected(nil, h) }

// decider is an access decision: a compiled rule, or the configured
// routes and default (access.Policy.DecideStepUp).
type decider func(access.Request, *providers.Identity) (access.Decision, string, access.StepUp)

// protected serves next behind decide (nil: the configured rules) with the
// middleware of the newest generation; each generation's chain is built
// once, on its first request.
func (s *Server) protected(decide decider, next http.Handler) http.Handler {
	type chain struct {
		gen *Server
		h   http.Handler
	}
	var built atomic.Pointer[chain]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := s.live.Load()
		c := built.Load()
		if c == nil || c.gen != g {
			d := decide
			if d == nil {
				d = g.rules.DecideStepUp
			}
			c = &chain{gen: g, h: g.entry(g.withBearer(g.withBasicAuth(g.guard(d, next), false), false), false)}
			built.Store(c)
		}
		c.h.ServeHTTP(w, r)
	})
}

// guard decides each request with decide and serves next the ones it
// allows, with the identity in the context when someone is signed in.
func (s *Server) guard(decide decider, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, signedIn, err := s.requestIdentity(r)
		d, reason, up := decide(s.ruleRequest(r), identityPtr(id, signedIn))
		if err != nil && d != access.Public {
			s.sessionUnavailable(w, r, err)
			return
		}
		switch d {
		case access.Unauthenticated:
			s.needSignIn(w, r)
			return
		case access.StepUpNeeded:
			s.needStepUp(w, r, id, up, reason) // stepup.go
			return
		case access.Forbidden:
			s.audit(r.Context(), auditEntry{event: audit.AccessDenied, user: id.User(), sub: id.Subject, reason: audit.Plain(reason),
				after: []any{"provider", id.Provider}, via: "proxy"})
			s.denied(w, r, s.originOf(r), s.identityView(id), s.requestedRD(r), !wantsRedirect(r), true)
			return
		}
		if signedIn {
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		next.ServeHTTP(w, r)
	})
}

// ruleRequest describes r for the access rules, whose paths are the paths
// after the external prefix: an embedding program's handler sees the
// prefix (public_url's path) still in its path, the broker's own routes
// do not.
func (s *Server) ruleRequest(r *http.Request) access.Request {
	req := access.RequestOf(r)
	if info := requestInfoFrom(r.Context()); info != nil && info.prefixKept {
		req.Path = withoutPrefix(req.Path, s.public.Prefix)
	}
	return req
}

// withoutPrefix is path without prefix, when path is prefix or below it.
func withoutPrefix(path, prefix string) string {
	rest, ok := strings.CutPrefix(path, prefix)
	switch {
	case !ok || (rest != "" && rest[0] != '/'):
		return path
	case rest == "":
		return "/"
	}
	return rest
}

func identityPtr(id providers.Identity, ok bool) *providers.Identity {
	if !ok {
		return nil
	}
	return &id
}

// providerIDs is the set of configured provider ids (nil without any, as
// when Options.Registry supplies them: then every id is accepted).
func providerIDs(cfgs []providers.Config) map[string]bool {
	if len(cfgs) == 0 {
		return nil
	}
	known := make(map[string]bool, len(cfgs))
	for _, p := range cfgs {
		known[p.ID] = true
	}
	return known
}
