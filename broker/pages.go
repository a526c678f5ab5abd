package broker

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/pages"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The broker's own pages (package pages: errors, the 403, the local login
// form, sign-out) are executed in the sign-in page's frame (selection.Page
// Templates and Frame): the same stylesheet, branding, footer and
// language (Accept-Language), one visual system. Their texts are message
// keys of selection/i18n.

// errorPage is a friendly page: what happened and what to do. Details go to
// the log, never to the page. Title and Message are message keys
// (selection/i18n/en.yaml); Provider, Code and Minutes fill their
// {provider}, {code} and {minutes}.
type errorPage struct {
	Status                  int
	Title, Message          string
	Provider, Code, Minutes string
	RetryURL                string
	// API answers JSON even without Accept: application/json (an API
	// call to a protected route, as the 401 path decides).
	API bool
	// Denied fills the 403 of an access rule: who is signed in, and the
	// ways on.
	Denied *pages.Denied
}

// errorCode is the JSON "error" of a page: its title key without _title.
func errorCode(p errorPage) string { return strings.TrimSuffix(p.Title, "_title") }

// renderError answers with the error page, or JSON to a client that asks
// for it (Accept: application/json, or p.API). Either shows the request
// ID, which the log line written here carries too.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, p errorPage) {
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	id := RequestIDFrom(r.Context()) // in the caller's log line too
	f := s.frame(r)
	msg := f.T.Format(p.Message, "provider", p.Provider, "code", p.Code, "minutes", p.Minutes)
	if p.API || pages.WantsJSON(r) {
		pages.WriteErrorJSON(w, p.Status, errorCode(p), msg, id, p.Denied)
		return
	}
	s.render(w, r, p.Status, "error.html", pages.Error{Frame: f,
		Title:  f.T.Format(p.Title, "provider", p.Provider),
		Status: p.Status, Message: msg, RetryURL: p.RetryURL, RequestID: id, Denied: p.Denied})
}

// frame is the page frame for r: its language, and the assets' base URL,
// absolute, as a forward-auth 403 is shown on the application's origin.
func (s *Server) frame(r *http.Request) selection.Frame {
	return s.selection.Frame(r.Header.Get("Accept-Language"), s.originOf(r).URL("/oauth2/static/"))
}

// render executes a page template into a buffer first, so a template error
// never sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	s.renderPage(w, r, status, name, data, "")
}

// renderPage is render; scriptSrc, when set, is the CSP source list of the
// page's inline scripts (their hashes), which the pages' CSP otherwise
// forbids.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any, scriptSrc string) {
	if err := pages.Write(w, s.pages, status, name, data, s.selection.StyleSrc(), s.originOf(r).String(), scriptSrc); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "template", name, "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// denied builds the 403 of an access rule for the signed-in user id; rd
// is the denied request (validated here: only the broker's origin or
// allowed hosts).
// With form, "Use another account" is a sign-out form with the session's
// CSRF token (the broker's own routes, where the session is loaded);
// without, a link to the sign-out confirmation (forward-auth, where the
// page is shown on the application's origin).
func (s *Server) denied(w http.ResponseWriter, r *http.Request, o origin, id identityView, rd string, api, form bool) {
	d := &pages.Denied{User: id.user, Provider: id.provider, SignOutAction: o.URL("/oauth2/sign_out"), BackURL: o.URL("/")}
	signIn := o.URL("/oauth2/sign_in")
	if o.redirectAllowed(rd) {
		signIn += "?rd=" + url.QueryEscape(rd)
	}
	d.SwitchRD = signIn
	d.SignOutConfirmURL = o.URL("/oauth2/sign_out") + "?rd=" + url.QueryEscape(signIn)
	if ref := r.Header.Get("Referer"); ref != "" && ref != rd && o.redirectAllowed(ref) {
		d.BackURL = ref
	}
	if form && !api && !pages.WantsJSON(r) {
		d.CSRF = s.sessions.CSRF(r.Context())
		if err := saveSession(w); err != nil {
			s.sessionUnavailable(w, r, err)
			return
		}
	}
	s.renderError(w, r, errorPage{Status: http.StatusForbidden, Title: "forbidden_title", Message: "forbidden", API: api, Denied: d})
}

// identityView is who the 403 page names.
type identityView struct{ user, provider string }

// identityView names id: the user as the sign-out page does, and the
// provider by its display name.
func (s *Server) identityView(id providers.Identity) identityView {
	v := identityView{user: cmp.Or(id.PreferredUsername, id.User()), provider: id.Provider}
	if p, ok := s.registry.Get(id.Provider); ok {
		v.provider = p.Name()
	}
	return v
}

// requestedRD is where a browser asking for r returns after signing in:
// the path it asked for, under the external prefix.
func (s *Server) requestedRD(r *http.Request) string {
	rd := r.URL.RequestURI() // the path the browser asked for, prefix included
	if info := requestInfoFrom(r.Context()); info == nil || !info.prefixKept {
		rd = s.originOf(r).Path(rd)
	}
	return rd
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.opts.Now() }
