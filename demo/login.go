package demo

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/formbody"
)

// loginPage is the demo IdP's sign-in UI: one username/password form per auth request.
type loginPage struct {
	title    string
	users    []User
	storage  *idpStorage
	callback func(ctx context.Context, authRequestID string) string // op.AuthCallbackURL
	logger   *slog.Logger
	pages    *pages
}

// maxLoginForm bounds the body of every request to a demo IdP: POST /login, and the op's
// endpoints (formbody.Limit in NewIdP).
const maxLoginForm = 64 << 10

// show serves GET /login?authRequestID=ID.
func (lp *loginPage) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if !lp.knownRequest(r.Context(), id) {
		lp.render(w, r, http.StatusBadRequest, id, "", msgUnknownRequest)
		return
	}
	lp.render(w, r, http.StatusOK, id, "", "")
}

// submit serves POST /login (form fields id, username, password). On success it marks the
// auth request done and redirects to the op's callback, which redirects to the client.
func (lp *loginPage) submit(w http.ResponseWriter, r *http.Request) {
	form, err := formbody.Read(w, r, maxLoginForm)
	if err != nil {
		lp.render(w, r, formbody.Status(err), "", "", msgUnreadable)
		return
	}
	id, username := form.Get("id"), form.Get("username")
	if !lp.knownRequest(r.Context(), id) {
		lp.render(w, r, http.StatusBadRequest, id, username, msgUnknownRequest)
		return
	}
	// CheckUsernamePassword looks the user up in our userStore and marks the request done.
	if err := lp.storage.CheckUsernamePassword(username, form.Get("password"), id); err != nil {
		lp.logger.InfoContext(r.Context(), "demo idp: sign-in failed", "username", username)
		lp.render(w, r, http.StatusUnauthorized, id, username, msgBadCredentials)
		return
	}
	lp.logger.InfoContext(r.Context(), "demo idp: signed in", "username", username)
	http.Redirect(w, r, lp.callback(r.Context(), id), http.StatusFound)
}

func (lp *loginPage) knownRequest(ctx context.Context, id string) bool {
	if id == "" {
		return false
	}
	_, err := lp.storage.AuthRequestByID(ctx, id)
	return err == nil
}

// render shows the login page; errKey is the message key of what went
// wrong (demoTexts; the failure message never says which field was
// wrong), or "".
func (lp *loginPage) render(w http.ResponseWriter, r *http.Request, status int, id, username, errKey string) {
	d := lp.pages.data(r, "")
	d.Title = strings.ReplaceAll(d.X["sign_in_to"], "{title}", lp.title)
	d.ID, d.Username, d.Users = id, username, lp.users
	if errKey != "" {
		d.Error = d.X[errKey]
	}
	lp.pages.render(w, status, "login.html", d)
}
