package demo

import (
	"context"
	"html/template"
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
}

// maxLoginForm bounds the body of every request to a demo IdP: POST /login, and the op's
// endpoints (formbody.Limit in NewIdP).
const maxLoginForm = 64 << 10

// Messages shown on the login page. The failure message never says which field was wrong.
const (
	msgBadCredentials = "Invalid username or password."
	msgUnknownRequest = "This sign-in request is unknown or has expired. Go back to the application and start again."
)

// show serves GET /login?authRequestID=ID.
func (lp *loginPage) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if !lp.knownRequest(r.Context(), id) {
		lp.render(w, http.StatusBadRequest, id, "", msgUnknownRequest)
		return
	}
	lp.render(w, http.StatusOK, id, "", "")
}

// submit serves POST /login (form fields id, username, password). On success it marks the
// auth request done and redirects to the op's callback, which redirects to the client.
func (lp *loginPage) submit(w http.ResponseWriter, r *http.Request) {
	form, err := formbody.Read(w, r, maxLoginForm)
	if err != nil {
		lp.render(w, formbody.Status(err), "", "", "The form could not be read.")
		return
	}
	id, username := form.Get("id"), form.Get("username")
	if !lp.knownRequest(r.Context(), id) {
		lp.render(w, http.StatusBadRequest, id, username, msgUnknownRequest)
		return
	}
	// CheckUsernamePassword looks the user up in our userStore and marks the request done.
	if err := lp.storage.CheckUsernamePassword(username, form.Get("password"), id); err != nil {
		lp.logger.InfoContext(r.Context(), "demo idp: sign-in failed", "username", username)
		lp.render(w, http.StatusUnauthorized, id, username, msgBadCredentials)
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

func (lp *loginPage) render(w http.ResponseWriter, status int, id, username, errMsg string) {
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, loginData{
		Title: lp.title, ID: id, Username: username, Error: errMsg, Users: lp.users,
	})
}

type loginData struct {
	Title, ID, Username, Error string
	Users                      []User
}

// setPageHeaders sets the headers of every HTML page of the demo IdP.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers would apply it to the redirect chain back to the client.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

const pageStyle = `<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
.banner{background:#fff3cd;border:2px solid #b8860b;padding:.5rem 1rem;font-weight:bold}
.error{background:#f8d7da;border:1px solid #a94442;padding:.5rem 1rem}
label{display:block;margin-top:1rem}
input{font-size:1rem;padding:.3rem;width:100%;max-width:20rem}
button{margin-top:1rem;font-size:1rem;padding:.4rem 1.2rem}
table{border-collapse:collapse;margin-top:.5rem}
th,td{border:1px solid #999;padding:.25rem .6rem;text-align:left}
</style>`

var loginTemplate = template.Must(template.New("login").Funcs(template.FuncMap{
	"join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in – {{.Title}} (DEMO)</title>
` + pageStyle + `
</head>
<body>
<p class="banner" role="note">DEMO — not for production. Demo identity provider — not for production.</p>
<main>
<h1>Sign in to {{.Title}}</h1>
{{if .Error}}<p class="error" role="alert" id="login-error">{{.Error}}</p>{{end}}
{{if .ID}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="{{.Username}}" autocomplete="username" required autofocus{{if .Error}} aria-describedby="login-error"{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{end}}
{{if .Users}}
<section aria-labelledby="accounts">
<h2 id="accounts">Demo accounts</h2>
<table>
<caption>Accounts you can sign in with at this demo identity provider</caption>
<thead><tr><th scope="col">Username</th><th scope="col">Password</th><th scope="col">Email</th><th scope="col">Groups</th></tr></thead>
<tbody>
{{range .Users}}<tr><td>{{.Username}}</td><td>{{.Password}}</td><td>{{.Email}}{{if and .Email (not .EmailVerified)}} (not verified){{end}}</td><td>{{if .Groups}}{{join .Groups ", "}}{{else}}none{{end}}</td></tr>
{{end}}</tbody>
</table>
</section>
{{end}}
</main>
</body>
</html>
`))

var loggedOutTemplate = template.Must(template.New("logged-out").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Signed out (DEMO)</title>
` + pageStyle + `
</head>
<body>
<p class="banner" role="note">DEMO — not for production. Demo identity provider — not for production.</p>
<main><h1>You are signed out of the demo identity provider.</h1></main>
</body>
</html>
`))
