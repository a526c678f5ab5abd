package broker

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// handleStart begins the authorization-code flow with PKCE, state and
// nonce, all created here from crypto/rand and kept in a sealed cookie of
// this browser (package pending): a start keeps nothing on the server.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	p, ok := s.registry.Get(r.PathValue("provider"))
	if !ok {
		s.renderError(w, r, errorPage{Status: http.StatusNotFound, Title: "unknown_provider_title",
			Message: "unknown_provider", RetryURL: o.Path("/oauth2/sign_in")})
		return
	}
	rd := o.safeRedirect(r.URL.Query().Get("rd"))
	up, ok := stepUpOf(r.URL.Query()) // stepup.go
	if !ok {
		s.renderError(w, r, errorPage{Status: http.StatusBadRequest, Title: "signin_failed_title",
			Message: "signin_malformed", RetryURL: o.Path("/oauth2/sign_in")})
		return
	}
	pl := pending.Login{
		State:       randomToken(),
		Provider:    p.ID(),
		Nonce:       randomToken(),
		Verifier:    randomToken(), // 43 characters of base64url: a valid RFC 7636 verifier
		RedirectURI: o.URL("/oauth2/callback/" + url.PathEscape(p.ID())),
		RD:          rd,
		Created:     s.now(),
		Remember:    r.URL.Query().Get("remember") == "1" && s.sessions.PersistentMax() > 0,
		MaxAge:      int64(up.MaxAge / time.Second),
		ACRValues:   strings.Join(up.ACRValues, " "),
	}
	authURL, err := p.AuthCodeURL(r.Context(), providers.AuthRequest{
		State: pl.State, Nonce: pl.Nonce, Verifier: pl.Verifier, RedirectURI: pl.RedirectURI,
		FormURL: o.URL(localFormPath + url.PathEscape(p.ID())), LoginHint: r.URL.Query().Get("login_hint"),
		MaxAge: up.MaxAgePtr(), ACRValues: up.ACRValues,
	})
	if err != nil {
		s.audit(r.Context(), auditEntry{event: audit.LoginFailed, msg: "login start failed", provider: p.ID(), reason: audit.Because(audit.IdPUnavailable, "idp unavailable"), err: err})
		s.renderError(w, r, errorPage{Status: http.StatusBadGateway, Title: "provider_unavailable_title", Provider: p.Name(),
			Message: "provider_unreachable", RetryURL: o.Path("/oauth2/sign_in") + "?rd=" + url.QueryEscape(rd)})
		return
	}
	if err := s.pending.Save(r.Context(), w, r, o.cookieScope(), pl); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	s.rememberProvider(w, r, p.ID())
	s.audit(r.Context(), auditEntry{event: audit.LoginStarted, provider: p.ID()})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// handleCallback finishes a login. Every check that can refuse it runs
// before the session is touched; on success the session token is renewed.
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	defer s.timeCallback(r)() // metrics.go
	o := s.originOf(r)
	retry := o.Path("/oauth2/sign_in")
	var name, code string // the provider's name and the IdP's error code, for the messages
	refuse := func(status int, title, msg string, reason audit.Reason, err error) {
		s.audit(r.Context(), auditEntry{event: audit.LoginFailed, provider: r.PathValue("provider"), reason: reason, err: err})
		s.renderError(w, r, errorPage{Status: status, Title: title, Message: msg, Provider: name, Code: code, RetryURL: retry})
	}
	p, ok := s.registry.Get(r.PathValue("provider"))
	if !ok {
		refuse(http.StatusNotFound, "unknown_provider_title", "unknown_provider", audit.Because(audit.UnknownProvider, "unknown provider"), nil)
		return
	}
	name = p.Name()
	q := r.URL.Query()
	pl, err := s.pending.Take(w, r, o.cookieScope(), q.Get("state"))
	reason, err := pendingRefusal(err)
	switch {
	case err != nil:
		s.sessionUnavailable(w, r, err)
		return
	case reason.Why() == audit.MissingState:
		refuse(http.StatusBadRequest, "signin_failed_title", "signin_incomplete", reason, nil)
		return
	case reason != (audit.Reason{}):
		refuse(http.StatusBadRequest, "signin_link_expired_title", "signin_link_expired", reason, nil)
		return
	}
	if pl.Provider != p.ID() {
		refuse(http.StatusBadRequest, "signin_failed_title", "signin_wrong_provider", audit.Because(audit.WrongProvider, "state belongs to provider "+pl.Provider), nil)
		return
	}
	retry += "?rd=" + url.QueryEscape(pl.RD)
	if s.now().Sub(pl.Created) > pending.TTL {
		refuse(http.StatusBadRequest, "signin_expired_title", "signin_expired", audit.Because(audit.StateExpired, "state expired"), nil)
		return
	}
	res, err := p.Exchange(r.Context(), providers.Callback{Params: q, Nonce: pl.Nonce, Verifier: pl.Verifier, RedirectURI: pl.RedirectURI,
		MaxAge: stepUpOfLogin(pl).MaxAgePtr(), ACRValues: stepUpOfLogin(pl).ACRValues})
	if err != nil && s.stepUpRefused(w, p, err, refuse) { // stepup.go
		return
	}
	if err != nil {
		var authErr *providers.AuthError
		var unavailable *providers.UnavailableError
		var tokenErr *providers.TokenError
		var notAllowed *providers.NotAllowedError
		switch {
		case errors.As(err, &notAllowed):
			refuse(http.StatusForbidden, "signin_not_allowed_title", "signin_not_allowed", audit.Because(audit.NotAllowed, "not allowed: "+notAllowed.Reason), err)
		case errors.As(err, &tokenErr) && tokenErr.Misconfigured():
			refuse(http.StatusBadGateway, "signin_failed_title", "signin_misconfigured", audit.Because(audit.ClientRejected, "token endpoint refused the client: "+tokenErr.Code), err)
		case errors.As(err, &tokenErr):
			refuse(http.StatusUnauthorized, "signin_failed_title", "signin_rejected", audit.Because(audit.TokenError, "token endpoint error "+tokenErr.Code), err)
		case errors.As(err, &authErr) && authErr.Code == "access_denied":
			refuse(http.StatusForbidden, "signin_cancelled_title", "signin_cancelled", audit.Because(audit.DeniedAtIdP, "idp error "+authErr.Code), err)
		case errors.As(err, &authErr):
			code = authErr.Code
			refuse(http.StatusUnauthorized, "signin_failed_title", "signin_idp_error", audit.Because(audit.IdPError, "idp error "+authErr.Code), err)
		case errors.As(err, &unavailable):
			refuse(http.StatusBadGateway, "provider_unavailable_title", "provider_unreachable", audit.Because(audit.IdPUnavailable, "idp unavailable"), err)
		default:
			refuse(http.StatusUnauthorized, "signin_failed_title", "signin_unverified", audit.Because(audit.Verification, "verification failed"), err)
		}
		return
	}
	// The state is spent by the session's commit, in the same step
	// (finishLogin), not in a round trip of its own.
	s.finishLogin(w, r, o, p, res, pl, true)
}

// spend marks pl's state used (pending.Logins.Spend), or refuses the login when it
// was used already or the store cannot say.
func (s *Server) spend(w http.ResponseWriter, r *http.Request, pl pending.Login,
	refuse func(status int, title, msg string, reason audit.Reason, err error)) bool {
	fresh, err := s.pending.Spend(r.Context(), pl)
	switch {
	case err != nil:
		s.sessionUnavailable(w, r, err)
	case !fresh:
		refuse(http.StatusBadRequest, "signin_link_expired_title", "signin_link_expired", audit.Because(audit.UnknownState, "unknown or replayed state"), nil)
	}
	return err == nil && fresh
}

// finishLogin completes a login (the callback, or the local login form): a new session
// token (no fixation), the identity, a persistent cookie when the user asked to stay
// signed in, and the pending login's rd.
//
// With spend, pl's state is spent by the session's commit (the mark and the
// session in one step: pending.SpendMark, session.Manager.IndexOnCommit),
// where the caller has not spent it: a replayed state writes no session and
// is refused as spend refuses it.
func (s *Server) finishLogin(w http.ResponseWriter, r *http.Request, o origin, p providers.Provider, res *providers.Result, pl pending.Login, spend bool) {
	ctx := r.Context()
	id, rd := res.Identity, pl.RD
	if up := stepUpOfLogin(pl); !up.IsZero() && !up.MetBy(id, s.now()) { // a password provider's: no acr
		if spend {
			_, _ = s.pending.Spend(ctx, pl) // refused either way; the state is not to complete another try
		}
		s.audit(ctx, auditEntry{event: audit.LoginFailed, provider: p.ID(), reason: audit.Because(audit.StepUp, "the sign-in does not meet "+up.String())})
		s.renderError(w, r, errorPage{Status: http.StatusForbidden, Title: "step_up_title", Message: "step_up_local",
			Provider: p.Name(), RetryURL: o.Path("/oauth2/sign_in")})
		return
	}
	t := session.Tokens{IDToken: res.IDToken, RefreshToken: res.RefreshToken, Expiry: res.Expiry, SID: res.SessionID, AccessToken: s.keptAccessToken(res.AccessToken)}
	if err := s.sessions.SignIn(ctx, id, t, pl.Remember); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	// Index the new session under the user and the IdP session, so that a
	// back-channel logout can end it: with the commit, in its step (with
	// Redis one script: the revocation check, the index, the write); a
	// session that cannot be indexed is not created.
	keys := []string{subKey(p.ID(), id.Subject)}
	if res.SessionID != "" {
		keys = append(keys, sidKey(p.ID(), res.SessionID))
	}
	var once string
	var onceTTL time.Duration
	if spend {
		once, onceTTL = pending.SpendMark(pl)
	}
	commitCtx, guarded := s.sessions.IndexOnCommit(ctx, keys, once, onceTTL)
	if !guarded { // New installs the guard (initLogout); without it no session is made unindexed and unspent
		s.sessionUnavailable(w, r, errors.New("broker: the session store has no revocation guard"))
		return
	}
	switch err := saveSessionCtx(w, commitCtx); {
	case errors.Is(err, store.ErrOnceUsed):
		s.loginRefusal(w, r, o, p, pl)(http.StatusBadRequest, "signin_link_expired_title", "signin_link_expired", audit.Because(audit.UnknownState, "unknown or replayed state"), nil)
		return
	case err != nil:
		s.sessionUnavailable(w, r, err)
		return
	}
	s.audit(ctx, auditEntry{event: audit.LoginSucceeded, provider: p.ID(), sub: id.Subject})
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusFound
	if r.Method == http.MethodPost { // the local login form
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, o.safeRedirect(rd), status)
}

// loginRefusal is handleCallback's refuse for a login that got as far as
// finishLogin: the audit line and the error page, which offers to try again.
func (s *Server) loginRefusal(w http.ResponseWriter, r *http.Request, o origin, p providers.Provider, pl pending.Login) func(int, string, string, audit.Reason, error) {
	return func(status int, title, msg string, reason audit.Reason, err error) {
		s.audit(r.Context(), auditEntry{event: audit.LoginFailed, provider: p.ID(), reason: reason, err: err})
		s.renderError(w, r, errorPage{Status: status, Title: title, Message: msg, Provider: p.Name(),
			RetryURL: o.Path("/oauth2/sign_in") + "?rd=" + url.QueryEscape(pl.RD)})
	}
}

// sessionUnavailable answers 503 with Retry-After (renderError) when the
// session store failed.
func (s *Server) sessionUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.logStoreError(r.Context(), "session store failed", err)
	s.renderError(w, r, errorPage{Status: http.StatusServiceUnavailable, Title: "store_unavailable_title", Message: "store_unavailable",
		API: !wantsRedirect(r) && !strings.HasPrefix(r.URL.Path, "/oauth2/")})
}

// clientAddr is the client address as proxyfix established it.
func clientAddr(r *http.Request) string {
	f := proxyfix.FromRequest(r)
	if f.ClientIP.IsValid() {
		return f.ClientIP.String()
	}
	return f.ClientNode
}
