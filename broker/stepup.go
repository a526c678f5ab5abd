package broker

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/basicauth"
	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Step-up per route (docs/access.md#step-up): a rule's max_age and
// acr_values ask more of the sign-in than who the user is. A session that
// does not meet them (access.StepUpNeeded) is sent to sign in again at its
// own IdP through /oauth2/start/{provider} with max_age and acr_values in
// the query and the same rd; the start asks the IdP for them (max_age
// with prompt=login, acr_values), the callback verifies the new ID
// token's auth_time and acr against what was asked (providers.CheckStepUp)
// and refuses with a 403 page when the IdP did not satisfy them; the
// session then keeps them (Identity.AuthnTime, ACR). An API client signed
// in with a bearer token gets RFC 9470's challenge instead; an HTTP Basic
// one, 403.

// StepUp is what a rule asks of the sign-in (access.StepUp): max_age,
// acr_values.
type StepUp = access.StepUp

// stepUpParams are the query parameters of a step-up's start.
const (
	paramMaxAge    = "max_age"
	paramACRValues = "acr_values"
)

// stepUpStart is the start URL (on the broker's origin o) that signs the
// user in again at provider with up, then returns to rd.
func stepUpStart(o origin, provider string, up access.StepUp, rd string) string {
	q := url.Values{}
	if rd != "" {
		q.Set("rd", rd)
	}
	if up.MaxAge > 0 {
		q.Set(paramMaxAge, strconv.FormatInt(int64(up.MaxAge/time.Second), 10))
	}
	if len(up.ACRValues) > 0 {
		q.Set(paramACRValues, strings.Join(up.ACRValues, " "))
	}
	return o.URL("/oauth2/start/"+url.PathEscape(provider)) + "?" + q.Encode()
}

// stepUpOf reads a start's step-up parameters; ok is false when they are
// malformed (a start with them is refused: the route would not be met).
func stepUpOf(q url.Values) (up access.StepUp, ok bool) {
	if v := q.Get(paramMaxAge); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 366*24*3600 {
			return up, false
		}
		up.MaxAge = time.Duration(n) * time.Second
	}
	if v := q.Get(paramACRValues); v != "" {
		up.ACRValues = strings.Fields(v)
		if len(up.ACRValues) > 8 {
			return up, false
		}
		for _, a := range up.ACRValues {
			if !access.ValidACR(a) {
				return up, false
			}
		}
	}
	return up, true
}

// stepUpOfLogin is what the login pl asked of the IdP.
func stepUpOfLogin(pl pending.Login) access.StepUp {
	return access.StepUp{MaxAge: time.Duration(pl.MaxAge) * time.Second, ACRValues: strings.Fields(pl.ACRValues)}
}

// needStepUp answers a request whose sign-in does not meet up (proxy mode
// and embedders): a browser goes to sign in again at its IdP and comes
// back; an API client gets 401 with that URL (signInRequired's JSON); an
// API client with a bearer token, RFC 9470's challenge; HTTP Basic, 403.
func (s *Server) needStepUp(w http.ResponseWriter, r *http.Request, id providers.Identity, up access.StepUp, reason string) {
	if s.credentialStepUp(w, r, up, reason) {
		return
	}
	o := s.originOf(r)
	rd := r.URL.RequestURI()
	if info := requestInfoFrom(r.Context()); info == nil || !info.prefixKept {
		rd = o.Path(rd)
	}
	s.log.InfoContext(r.Context(), "step-up needed", "provider", id.Provider, "user", id.User(), "reason", reason)
	if wantsRedirect(r) {
		http.Redirect(w, r, stepUpStart(o, id.Provider, up, rd), http.StatusFound)
		return
	}
	signInRequired(w, stepUpStart(o, id.Provider, up, rd), s.bearer != nil)
}

// forwardAuthStepUp is needStepUp for forward-auth: 401 with Location set
// to the step-up start and the described request as rd (302 with
// ?redirect=1 for a browser navigation), as forwardAuthSignIn answers.
func (s *Server) forwardAuthStepUp(w http.ResponseWriter, r *http.Request, t target, id providers.Identity, up access.StepUp, reason string) {
	if s.credentialStepUp(w, r, up, reason) {
		return
	}
	o := s.originOf(r)
	rd := t.rd(o)
	if rd != "" && !o.redirectAllowed(rd) {
		rd = ""
	}
	s.log.InfoContext(r.Context(), "step-up needed", "provider", id.Provider, "user", id.User(), "reason", reason, "via", "forward_auth")
	loc := stepUpStart(o, id.Provider, up, rd)
	w.Header().Set("Location", loc)
	method := t.method
	if method == "" {
		method = r.Method
	}
	switch r.URL.Query().Get("redirect") {
	case "1", "true":
		if wantsRedirect(&http.Request{Method: strings.ToUpper(method), Header: r.Header}) {
			w.WriteHeader(http.StatusFound)
			return
		}
	}
	signInRequired(w, loc, s.bearer != nil)
}

// credentialStepUp answers a step-up for a request signed in by its own
// credentials, which no redirect can renew: a bearer token gets 401 with
// RFC 9470's insufficient_user_authentication and what is asked; HTTP
// Basic, 403. It reports whether it answered.
func (s *Server) credentialStepUp(w http.ResponseWriter, r *http.Request, up access.StepUp, reason string) bool {
	ctx := r.Context()
	if c, ok := ctx.Value(bearerKey{}).(*bearerCredential); ok {
		s.audit(ctx, auditEntry{event: audit.BearerRefused, provider: c.id.Provider, sub: c.id.Subject, reason: audit.Because(audit.StepUp, reason)})
		extra := ""
		if len(up.ACRValues) > 0 {
			extra += fmt.Sprintf(", acr_values=%q", strings.Join(up.ACRValues, " "))
		}
		if up.MaxAge > 0 {
			extra += fmt.Sprintf(", max_age=%d", int64(up.MaxAge/time.Second))
		}
		bearerRefusal(w, http.StatusUnauthorized, "insufficient_user_authentication", extra)
		return true
	}
	if id, ok := ctx.Value(basicIdentityKey{}).(providers.Identity); ok {
		s.audit(ctx, auditEntry{event: audit.AccessDenied, user: id.User(), sub: id.Subject, reason: audit.Because(audit.StepUp, reason),
			after: []any{"provider", id.Provider}, via: "basic_auth"})
		basicauth.Refuse(w, http.StatusForbidden, "this path needs a stronger sign-in than HTTP Basic", 0)
		return true
	}
	return false
}

// stepUpRefused answers a login that did not meet what its step-up asked:
// 403, naming the IdP, and the reason in the log.
func (s *Server) stepUpRefused(w http.ResponseWriter, p providers.Provider, err error,
	refuse func(status int, title, msg string, reason audit.Reason, err error)) bool {
	var unmet *providers.StepUpError
	var authErr *providers.AuthError
	var reason string
	switch {
	case errors.As(err, &unmet):
		reason = unmet.Reason
	case errors.As(err, &authErr) && authErr.Code == "unmet_authentication_requirements":
		// OpenID Connect Core 1.0 errata / OpenID Connect Extended
		// Authentication Profile: the IdP says it cannot meet acr_values.
		reason = "the identity provider answered unmet_authentication_requirements"
	default:
		return false
	}
	refuse(http.StatusForbidden, "step_up_title", "step_up_unmet",
		audit.Because(audit.StepUp, reason), nil)
	return true
}
