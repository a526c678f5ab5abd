package broker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/basicauth"
	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/formbody"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The login form of local providers (providers.PasswordAuthenticator,
// docs/local-users.md). /oauth2/start makes the pending login as for any
// provider, and the provider's AuthCodeURL sends the browser to
// GET /oauth2/local/{provider}?state=..., the form. Its POST carries the
// state back as the CSRF token: unguessable, bound to this browser (its
// pending-login cookie, package pending) and this provider, and single-use. A wrong password leaves it valid for another
// try (within its ten minutes, and the rate limits); a correct one spends
// it, and the login completes as a callback does.

// maxLocalForm bounds the body of a login form post.
const maxLocalForm = 16 << 10

// localFormPath is where the broker serves a local provider's login form:
// localFormPath + id (routes in server.go), which a local provider's
// AuthCodeURL sends the browser to (providers.AuthRequest.FormURL).
const localFormPath = "/oauth2/local/"

// localLogins is the state of password sign-ins: the rate limits, shared by
// the form and HTTP Basic (kept across reloads), and the paths where Basic
// is accepted (from the configuration).
type localLogins struct {
	limits *ratelimit.Logins
	basic  basicauth.Routes
}

// localLoginPage is local_login.html's data.
type localLoginPage struct {
	selection.Frame
	Title     string
	Provider  string
	Action    string
	State     string
	Username  string
	Error     string
	SignInURL string
}

// handleLocalForm shows the login form of a pending login.
func (s *Server) handleLocalForm(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	p, _, ok := s.passwordProvider(w, r, o)
	if !ok {
		return
	}
	q := r.URL.Query()
	if _, ok := s.pendingFor(w, r, o, p, q.Get("state")); !ok {
		return
	}
	s.renderLocalForm(w, r, http.StatusOK, o, p, q.Get("state"), q.Get("username"), "")
}

// handleLocalLogin checks the form: the state first (no password is
// checked for a request that does not carry this session's pending login
// for this provider), then the rate limits, then the password.
func (s *Server) handleLocalLogin(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	p, pa, ok := s.passwordProvider(w, r, o)
	if !ok {
		return
	}
	form, err := formbody.Read(w, r, maxLocalForm)
	if err != nil {
		s.refuseLocal(w, r, o, formbody.Status(err), "signin_failed_title", "signin_form_unreadable", audit.Because(audit.BadRequest, "unreadable form"), err)
		return
	}
	state := form.Get("state")
	pl, ok := s.pendingFor(w, r, o, p, state)
	if !ok {
		return
	}
	username, password := form.Get("username"), form.Get("password")
	res, wait, err := s.checkPassword(r, p.ID(), pa, username, password)
	var unavailable *providers.UnavailableError
	switch {
	case wait > 0:
		s.tooManyAttempts(w, r, wait, o.Path(localFormPath+url.PathEscape(p.ID()))+"?state="+url.QueryEscape(state))
		return
	case errors.As(err, &unavailable):
		s.refuseLocal(w, r, o, http.StatusBadGateway, "provider_unavailable_title", "provider_unreachable", audit.Because(audit.IdPUnavailable, "provider unavailable"), err)
		return
	case err != nil:
		s.audit(r.Context(), auditEntry{event: audit.LoginFailed, msg: "local login failed", provider: p.ID(), reason: audit.Because(audit.BadCredentials, "invalid credentials"),
			after: []any{"username", audit.Clip(username, 64)}})
		s.renderLocalForm(w, r, http.StatusUnauthorized, o, p, state, username, "wrong_password")
		return
	}
	// The password was right: this login is over, whatever comes next.
	s.pending.Expire(w, o.cookieScope(), state)
	if !s.spend(w, r, pl, func(status int, title, msg string, reason audit.Reason, err error) {
		// Another request completed this login in the meantime.
		s.refuseLocal(w, r, o, status, title, msg, reason, err)
	}) {
		return
	}
	s.finishLogin(w, r, o, p, res, pl, false) // spent above
}

// checkPassword runs one rate-limited password check. When a limit is
// reached it checks nothing and returns how long to wait.
func (s *Server) checkPassword(r *http.Request, provider string, pa providers.PasswordAuthenticator, username, password string) (*providers.Result, time.Duration, error) {
	a, wait := s.local.limits.Begin(ratelimit.UserKey(provider, username), ratelimit.AddrKey(clientAddr(r)))
	if wait > 0 {
		s.logAnonymous(r.Context(), slog.LevelWarn, "password attempts limited", "provider", provider, "user", audit.Clip(username, 64), "client", clientAddr(r),
			"limit", a.Limit, "retry_after", wait.Round(time.Second))
		return nil, wait, nil
	}
	// Not canceled with the request: once the password went to the
	// directory, the attempt counts whether or not the client waits for
	// the answer (a client that hangs up would otherwise get it refunded).
	// The provider bounds the check with its own timeouts.
	res, err := pa.Authenticate(context.WithoutCancel(r.Context()), username, password)
	switch {
	case err == nil:
		s.local.limits.Succeeded(a)
	case !errors.Is(err, providers.ErrInvalidCredentials):
		s.local.limits.Refund(a) // not the user's failure
	}
	return res, 0, err
}

// passwordProvider is the request's {provider} when it signs users in with
// a password; otherwise it answers 404.
func (s *Server) passwordProvider(w http.ResponseWriter, r *http.Request, o origin) (providers.Provider, providers.PasswordAuthenticator, bool) {
	p, ok := s.registry.Get(r.PathValue("provider"))
	var pa providers.PasswordAuthenticator
	if ok {
		pa, ok = p.(providers.PasswordAuthenticator)
	}
	if !ok {
		s.refuseLocal(w, r, o, http.StatusNotFound, "unknown_provider_title", "unknown_provider", audit.Because(audit.UnknownProvider, "not a password provider"), nil)
	}
	return p, pa, ok
}

// pendingFor finds the pending login of state in this browser (its
// cookie stays: a wrong password may be corrected), and checks that it
// belongs to p and has not expired.
func (s *Server) pendingFor(w http.ResponseWriter, r *http.Request, o origin, p providers.Provider, state string) (pending.Login, bool) {
	pl, err := s.pending.Peek(r, o.cookieScope(), state)
	reason, err := pendingRefusal(err)
	switch {
	case err != nil:
		s.sessionUnavailable(w, r, err)
		return pending.Login{}, false
	case reason != (audit.Reason{}):
	case pl.Provider != p.ID():
		reason = audit.Because(audit.WrongProvider, "state belongs to provider "+pl.Provider)
	case s.now().Sub(pl.Created) > pending.TTL:
		reason = audit.Because(audit.StateExpired, "state expired")
	default:
		return pl, true
	}
	s.refuseLocal(w, r, o, http.StatusBadRequest, "signin_link_expired_title", "signin_link_expired", reason, nil)
	return pending.Login{}, false
}

// refuseLocal logs a refused login and shows a friendly page that offers a
// fresh start.
func (s *Server) refuseLocal(w http.ResponseWriter, r *http.Request, o origin, status int, title, msg string, reason audit.Reason, err error) {
	s.audit(r.Context(), auditEntry{event: audit.LoginFailed, provider: r.PathValue("provider"), reason: reason, err: err})
	name := r.PathValue("provider")
	if p, ok := s.registry.Get(name); ok {
		name = p.Name()
	}
	s.renderError(w, r, errorPage{Status: status, Title: title, Message: msg, Provider: name, RetryURL: o.Path("/oauth2/sign_in")})
}

// renderLocalForm shows the form; problem is the message key of what went
// wrong, or "".
func (s *Server) renderLocalForm(w http.ResponseWriter, r *http.Request, status int, o origin, p providers.Provider, state, username, problem string) {
	f := s.frame(r)
	page := localLoginPage{Frame: f,
		Title: f.T.Format("sign_in_with", "provider", p.Name()), Provider: p.Name(),
		Action: o.Path(localFormPath + url.PathEscape(p.ID())), State: state,
		Username: username, SignInURL: o.Path("/oauth2/sign_in"),
	}
	if problem != "" {
		page.Error = f.T[problem]
	}
	s.render(w, r, status, "local_login.html", page)
}

// tooManyAttempts answers 429 with Retry-After and a page that says how
// long to wait.
func (s *Server) tooManyAttempts(w http.ResponseWriter, r *http.Request, wait time.Duration, retryURL string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
	s.renderError(w, r, errorPage{Status: http.StatusTooManyRequests, Title: "too_many_attempts_title",
		Message: "too_many_attempts", Minutes: minutes(wait), RetryURL: retryURL})
}

func retryAfterSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// minutes is d rounded up to whole minutes (at least 1), as a number.
func minutes(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Minute-1)/time.Minute)))
}
