package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/bearer"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/presets"
)

// API clients' access tokens (docs/api-clients.md): a request with
// `Authorization: Bearer <token>` is signed in as the token's user for
// this request only, when a provider with api_tokens accepts the token
// (package bearer checks it). No session is created or read; the access
// rules decide afterwards, as for a session. Without any such provider a
// Bearer header is no business of the broker's and passes to the app.

// bearerKey carries, in a request's context, the credential a bearer
// token established.
type bearerKey struct{}

// bearerCredential is an accepted token and its identity. The token is
// kept for the apps that ask for the caller's access token
// (pass_access_token); it is never logged.
type bearerCredential struct {
	id    providers.Identity
	token string
	pre   *relay.Headers // the identity's relay headers, made when the token was first accepted
}

// newBearer builds the generation's bearer verifier from its providers;
// nil when none accepts API tokens.
func (s *Server) newBearer() *bearer.Verifier {
	return bearer.New(s.registry.All(), bearer.Options{Now: s.opts.Now, Derive: relayHeadersOf})
}

// apiTokensProblems: two providers of one issuer (two clients at one IdP)
// must not accept the same audience, or one token would be both's; at
// most one provider introspects, or an opaque token would be sent to
// every introspecting IdP, another organisation's included.
func apiTokensProblems(cfgs []providers.Config) []error {
	var errs []error
	seen := map[[2]string]int{}
	introspecting := -1
	for i, c := range cfgs {
		if c.APITokens == nil {
			continue
		}
		if c.APITokens.Introspection {
			if introspecting >= 0 {
				errs = append(errs, fmt.Errorf("providers[%d].api_tokens.introspection: providers[%d] (%q) introspects already, and only one provider may: "+
					"an opaque token names no issuer, and would be sent to each introspecting IdP", i, introspecting, cfgs[introspecting].ID))
			} else {
				introspecting = i
			}
		}
		iss := presets.Resolve(c).Issuer
		for j, a := range c.APITokens.Audiences {
			k := [2]string{iss, a}
			if prev, dup := seen[k]; dup && prev != i {
				errs = append(errs, fmt.Errorf("providers[%d].api_tokens.audiences[%d]: %q is already accepted by providers[%d], of the same issuer", i, j, a, prev))
				continue
			}
			seen[k] = i
		}
	}
	return errs
}

// bearerToken is the token of an Authorization: Bearer header (RFC 6750
// §2.1, the scheme in any case), "" when there is none.
func bearerToken(h http.Header) (string, bool) {
	auth := h.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(auth[7:]), true
}

// withBearer checks a bearer token before next (the proxy, or the
// forward-auth endpoint). A refused token gets 401 with an RFC 6750
// challenge naming invalid_token (403 with insufficient_scope when a
// required scope is missing); an IdP that cannot be asked, 503. The token
// does not reach the app, unless it asked for the caller's access token.
func (s *Server) withBearer(next http.Handler, forwardAuth bool) http.Handler {
	if s.bearer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Authorization")
		a, err := s.bearer.Verify(r.Context(), tok)
		var refused *bearer.Error
		switch {
		case errors.As(err, &refused):
			class, status := audit.InvalidToken, http.StatusUnauthorized
			if refused.Code == bearer.InsufficientScope {
				class, status = audit.Scope, http.StatusForbidden
			}
			s.audit(r.Context(), auditEntry{event: audit.BearerRefused, provider: refused.Provider, reason: audit.Because(class, refused.Reason)})
			bearerRefusal(w, status, refused.Code, "")
		case err != nil:
			s.audit(r.Context(), auditEntry{event: audit.BearerRefused, reason: audit.Because(audit.IdPUnavailable, "the identity provider could not be asked"), err: err})
			w.Header().Set("Retry-After", "5")
			writeJSONError(w, http.StatusServiceUnavailable, "the identity provider could not be asked; try again")
		default:
			if !forwardAuth {
				r.Header.Del("Authorization") // relayed again only to apps that ask (tokenrelay.go)
			}
			s.log.DebugContext(r.Context(), "bearer token accepted", "provider", a.Identity.Provider, "user", a.Identity.User())
			pre, _ := a.Derived.(*relay.Headers)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bearerKey{}, &bearerCredential{id: a.Identity, token: tok, pre: pre})))
		}
	})
}

// bearerChallenge is the challenge of a 401 for want of credentials when
// API tokens are accepted (RFC 6750 §3), next to the session's.
const bearerChallenge = `Bearer realm="oidc-broker"`

// bearerRefusal answers a refused token: the RFC 6750 §3 challenge with
// its error code (and, for a step-up, RFC 9470's parameters in extra),
// and the code as JSON.
func bearerRefusal(w http.ResponseWriter, status int, code, extra string) {
	h := w.Header()
	h.Set("WWW-Authenticate", fmt.Sprintf(`%s, error=%q%s`, bearerChallenge, code, extra))
	writeJSONError(w, status, code)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}
