package broker

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/formbody"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/selection"
)

// Signing out (docs/logout.md). A local sign-out ends the broker's session;
// where the provider publishes an end_session_endpoint (and logout.idp
// allows it) the browser then goes there, with id_token_hint, to end the
// IdP's session too (OpenID Connect RP-Initiated Logout 1.0), and comes
// back to /oauth2/signed_out/{provider}, which continues to rd.

// LogoutConfig configures what signing out does beyond the broker's own
// session. The zero value sends users on to every IdP that supports it.
type LogoutConfig struct {
	// IdP sends the user on to the identity provider's
	// end_session_endpoint after the broker's session ended, for providers
	// that publish one, so that the IdP's session ends too. Default true.
	// Each IdP must accept <public origin>/oauth2/signed_out/<id> as a
	// post-logout redirect URI.
	IdP *bool `yaml:"idp"`
	// LocalOnly lists providers whose sign-out stays local even so.
	LocalOnly []string `yaml:"local_only"`
}

// idpLogout reports whether signing out of provider continues at the IdP
// (when the IdP supports it).
func (c LogoutConfig) idpLogout(provider string) bool {
	return (c.IdP == nil || *c.IdP) && !slices.Contains(c.LocalOnly, provider)
}

// logoutProblems: logout.local_only names configured providers.
func (c Config) logoutProblems() []error {
	if len(c.Providers) == 0 { // a registry given in Options
		return nil
	}
	var errs []error
	for i, id := range c.Logout.LocalOnly {
		if !slices.ContainsFunc(c.Providers, func(p providers.Config) bool { return p.ID == id }) {
			errs = append(errs, fmt.Errorf("logout.local_only[%d]: %q is not the id of a provider", i, id))
		}
	}
	return errs
}

// Bounds of the sign-out. (While the browser is at the IdP, a fresh
// session keeps a session.SignOutReturn.)
const (
	// signOutTTL bounds the time spent at the IdP's sign-out page.
	signOutTTL = 10 * time.Minute
	// endSessionTimeout bounds waiting for the IdP's metadata at sign-out;
	// past it the sign-out stays local.
	endSessionTimeout = 3 * time.Second
	// maxSignOutForm bounds the body of the sign-out form (a CSRF token and
	// rd).
	maxSignOutForm = 16 << 10
)

// handleSignOutPage shows a confirmation with a CSRF-protected form: a GET
// never signs anyone out, so a link or image on another site cannot.
func (s *Server) handleSignOutPage(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	id, signedIn := s.sessions.Identity(ctx)
	f := s.frame(r)
	data := signOutData{Frame: f, Title: f.T["sign_out_title"], SignedIn: signedIn, Action: o.Path("/oauth2/sign_out"), SignInURL: o.Path("/oauth2/sign_in")}
	// Without a (safe) rd the sign-out ends on the signed-out page, not at /.
	if rd := r.URL.Query().Get("rd"); o.redirectAllowed(rd) {
		data.RD = rd
	}
	if signedIn {
		v := s.identityView(id)
		data.User, data.Provider = v.user, v.provider
		data.CSRF = s.sessions.CSRF(ctx)
		tokens, _ := s.sessions.Tokens(ctx)
		if _, atIdP := s.endSessionAtIdP(ctx, o, id.Provider, tokens.IDToken, ""); atIdP {
			p, _ := s.registry.Get(id.Provider)
			data.IdP = p.Name()
		}
	} else {
		data.Title = f.T["signed_out_title"]
	}
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "sign_out.html", data)
}

type signOutData struct {
	selection.Frame
	Title, User, Action, CSRF, RD, SignInURL string
	// IdP names the identity provider the sign-out continues at, if any;
	// Provider the one the user signed in with.
	IdP, Provider string
	SignedIn      bool
}

// handleSignOut ends the session after checking the CSRF token, then goes
// to the IdP's end_session_endpoint when that applies (a 303, or a page
// that posts the request when it is too long for a URL), else to rd
// (validated) or the signed-out page.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	form, err := formbody.Read(w, r, maxSignOutForm)
	if err != nil {
		s.logAnonymous(ctx, slog.LevelInfo, "sign-out form refused", "client", clientAddr(r), "error", err)
		s.renderError(w, r, errorPage{Status: formbody.Status(err), Title: "signout_failed_title",
			Message: "signout_unreadable", RetryURL: o.Path("/oauth2/sign_out")})
		return
	}
	rd := form.Get("rd")
	if !o.redirectAllowed(rd) {
		rd = ""
	}
	id, signedIn := s.sessions.Identity(ctx)
	if !signedIn {
		http.Redirect(w, r, cmp.Or(rd, o.Path("/oauth2/sign_out")), http.StatusSeeOther)
		return
	}
	want := s.sessions.CSRFHeld(ctx)
	got := form.Get("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		s.audit(ctx, auditEntry{event: audit.LogoutRefused, provider: id.Provider, sub: id.Subject, reason: audit.Because(audit.CSRF, "csrf token mismatch")})
		s.renderError(w, r, errorPage{Status: http.StatusForbidden, Title: "signout_failed_title",
			Message: "signout_expired", RetryURL: o.Path("/oauth2/sign_out")})
		return
	}
	tokens, _ := s.sessions.Tokens(ctx)
	if err := s.sessions.End(ctx); err != nil { // revoked even when the deletion failed
		s.sessionUnavailable(w, r, err)
		return
	}
	state := randomToken()
	end, atIdP := s.endSessionAtIdP(ctx, o, id.Provider, tokens.IDToken, state)
	if atIdP {
		s.sessions.StartSignOutAtIdP(ctx, session.SignOutReturn{Provider: id.Provider, State: state, RD: rd, Created: s.now()})
	}
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	s.audit(ctx, auditEntry{event: audit.Logout, provider: id.Provider, sub: id.Subject, after: []any{"at_idp", atIdP}})
	w.Header().Set("Cache-Control", "no-store")
	if atIdP && end.MustPost() {
		p, _ := s.registry.Get(id.Provider)
		s.renderEndSession(w, r, p.Name(), end)
		return
	}
	var endURL string
	if atIdP {
		endURL = end.URL()
	}
	http.Redirect(w, r, cmp.Or(endURL, rd, o.Path("/oauth2/sign_out")), http.StatusSeeOther)
}

// handleSignedOut is the post_logout_redirect_uri of a provider: the IdP
// sends the browser back here after its own sign-out. With the state of
// this browser's sign-out it continues to that sign-out's rd; otherwise,
// and without rd, it shows the signed-out page.
func (s *Server) handleSignedOut(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	provider := r.PathValue("provider")
	dest := o.Path("/oauth2/sign_out")
	ret, pending, empty := s.sessions.TakeSignOutAtIdP(ctx)
	state := r.URL.Query().Get("state")
	switch {
	case !pending:
		s.log.DebugContext(ctx, "signed-out landing without a sign-out in progress", "provider", provider, "client", clientAddr(r))
	case ret.Provider != provider || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(ret.State)) != 1 ||
		s.now().Sub(ret.Created) > signOutTTL:
		s.log.WarnContext(ctx, "signed-out landing: state does not match the sign-out", "provider", provider, "client", clientAddr(r))
	default:
		s.audit(ctx, auditEntry{event: audit.LogoutAtIdP, provider: provider})
		if ret.RD != "" && o.redirectAllowed(ret.RD) {
			dest = ret.RD
		}
	}
	if pending && empty {
		// Nothing left in the session the sign-out made: drop it.
		if err := s.sessions.Destroy(ctx); err != nil {
			s.sessionUnavailable(w, r, err)
			return
		}
	}
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// endSessionAtIdP is the request by which the browser ends the IdP's session
// after signing out of provider; ok is false when it does not: the IdP
// publishes no end_session_endpoint, the session kept no ID token,
// logout.idp says no, or the IdP cannot be reached (the sign-out then
// stays local, and says so in the log).
func (s *Server) endSessionAtIdP(ctx context.Context, o origin, provider, idToken, state string) (req providers.EndSessionRequest, ok bool) {
	if idToken == "" || !s.cfg.Logout.idpLogout(provider) {
		return req, false
	}
	p, _ := s.registry.Get(provider)
	es, ok := p.(providers.EndSessioner)
	if !ok {
		return req, false
	}
	// The IdP's metadata is normally known since the login; after a restart
	// discovery may be needed, and a slow IdP must not hold the sign-out.
	ctx, cancel := context.WithTimeout(ctx, endSessionTimeout)
	defer cancel()
	req, ok, err := es.EndSession(ctx, idToken, o.URL("/oauth2/signed_out/"+url.PathEscape(provider)), state)
	if err != nil {
		s.log.WarnContext(ctx, "sign-out at the identity provider skipped", "provider", provider, "error", err)
		return req, false
	}
	return req, ok
}
