package broker

import (
	"crypto/subtle"
	"net/http"
)

// handleSignOutPage shows a confirmation with a CSRF-protected form: a GET
// never signs anyone out, so a link or image on another site cannot.
func (s *Server) handleSignOutPage(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	id, signedIn := s.sessions.identity(ctx)
	data := signOutData{Title: "Sign out", SignedIn: signedIn, Action: o.Path("/oauth2/sign_out"), SignInURL: o.Path("/oauth2/sign_in")}
	// Without a (safe) rd the sign-out ends on the signed-out page, not at /.
	if rd := r.URL.Query().Get("rd"); o.redirectAllowed(rd) {
		data.RD = rd
	}
	if signedIn {
		data.User = id.PreferredUsername
		if data.User == "" {
			data.User = id.User()
		}
		data.CSRF = s.sessions.sm.GetString(ctx, keyCSRF)
		if data.CSRF == "" {
			data.CSRF = randomToken()
			s.sessions.sm.Put(ctx, keyCSRF, data.CSRF)
		}
	} else {
		data.Title = "Signed out"
	}
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, err)
		return
	}
	s.render(w, http.StatusOK, "sign_out.html", data)
}

type signOutData struct {
	Title, User, Action, CSRF, RD, SignInURL string
	SignedIn                                 bool
}

// handleSignOut ends the session after checking the CSRF token, then goes
// to rd (validated) or the signed-out page.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	id, signedIn := s.sessions.identity(ctx)
	if signedIn {
		want := s.sessions.sm.GetString(ctx, keyCSRF)
		got := r.PostFormValue("csrf")
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			s.log.Warn("sign-out refused", "reason", "csrf token mismatch", "client", clientAddr(r))
			s.renderError(w, errorPage{Status: http.StatusForbidden, Title: "Sign-out not confirmed",
				Message: "The sign-out form expired. Please confirm again.", RetryURL: o.Path("/oauth2/sign_out")})
			return
		}
		if err := s.sessions.sm.Destroy(ctx); err != nil {
			s.sessionUnavailable(w, err)
			return
		}
		if err := saveSession(w); err != nil {
			s.sessionUnavailable(w, err)
			return
		}
		s.log.Info("signed out", "provider", id.Provider, "user", id.User(), "client", clientAddr(r))
	}
	rd := r.PostFormValue("rd")
	if rd == "" || !o.redirectAllowed(rd) {
		rd = o.Path("/oauth2/sign_out")
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}
