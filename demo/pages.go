package demo

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/oidc-broker/oidc-broker/selection"
)

// The demo IdP's pages are drawn in the broker's page system (package
// selection: its frame, stylesheet, colours and logo, and the language of
// Accept-Language), so that the demo looks like one product.

//go:embed templates/*.html
var templateFS embed.FS

// pages renders the demo IdP's pages.
type pages struct {
	look *selection.Page
	tmpl *template.Template
}

func newPages(look *selection.Page) (*pages, error) {
	if look == nil {
		var err error
		if look, err = selection.New(selection.Config{}); err != nil {
			return nil, err
		}
	}
	t, err := look.Templates(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &pages{look: look, tmpl: t}, nil
}

// pageData is what the demo pages are executed with: the frame, the title,
// and the demo's own texts (X) in the frame's language.
type pageData struct {
	selection.Frame
	Title string
	X     map[string]string
	// The login form.
	ID, Username, Error string
	Users               []User
}

func (ps *pages) data(r *http.Request, title string) pageData {
	f := ps.look.Frame(r.Header.Get("Accept-Language"), "/static/")
	f.Brand = "" // the IdP's page is titled with the IdP's name
	x, ok := demoTexts[f.Lang]
	if !ok {
		x = demoTexts["en"]
	}
	return pageData{Frame: f, Title: title, X: x}
}

func (ps *pages) render(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := ps.tmpl.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "demo: "+err.Error(), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w, ps.look.StyleSrc())
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Add("Vary", "Accept-Language")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// serveStatic serves the logo of the page system at /static/logo.
func (ps *pages) serveStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := ps.look.Asset(nil, r.PathValue("asset"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.Data))
}

// setPageHeaders sets the headers of every HTML page of the demo IdP: no
// style but the page system's (by its hash), no script.
func setPageHeaders(w http.ResponseWriter, styleSrc string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers would apply it to the redirect chain back to the client.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleSrc+"; img-src 'self'; frame-ancestors 'none'")
}

// Message keys of the login page's errors (demoTexts).
const (
	msgBadCredentials = "bad_credentials"
	msgUnknownRequest = "unknown_request"
	msgUnreadable     = "unreadable"
)

// demoTexts are the demo IdP's texts by language.
var demoTexts = map[string]map[string]string{
	"en": {
		"banner":     "DEMO — not for production. Demo identity provider — not for production.",
		"sign_in_to": "Sign in to {title}", "username": "Username", "password": "Password", "sign_in": "Sign in",
		"accounts": "Demo accounts", "accounts_caption": "Accounts you can sign in with at this demo identity provider",
		"groups": "Groups", "none": "none", "not_verified": "not verified",
		msgBadCredentials:  "Invalid username or password.",
		msgUnknownRequest:  "This sign-in request is unknown or has expired. Go back to the application and start again.",
		msgUnreadable:      "The form could not be read.",
		"signed_out_title": "Signed out", "signed_out": "You are signed out of the demo identity provider.",
	},
	"de": {
		"banner":     "DEMO — nicht für den Produktivbetrieb. Demo-Identitätsanbieter — nicht für den Produktivbetrieb.",
		"sign_in_to": "Bei {title} anmelden", "username": "Benutzername", "password": "Passwort", "sign_in": "Anmelden",
		"accounts": "Demo-Konten", "accounts_caption": "Konten, mit denen Sie sich bei diesem Demo-Identitätsanbieter anmelden können",
		"groups": "Gruppen", "none": "keine", "not_verified": "nicht bestätigt",
		msgBadCredentials:  "Benutzername oder Passwort ist falsch.",
		msgUnknownRequest:  "Diese Anmeldeanfrage ist unbekannt oder abgelaufen. Kehren Sie zur Anwendung zurück und beginnen Sie neu.",
		msgUnreadable:      "Das Formular konnte nicht gelesen werden.",
		"signed_out_title": "Abgemeldet", "signed_out": "Sie sind beim Demo-Identitätsanbieter abgemeldet.",
	},
	"fr": {
		"banner":     "DÉMO — pas pour la production. Fournisseur d'identité de démonstration — pas pour la production.",
		"sign_in_to": "Se connecter à {title}", "username": "Nom d'utilisateur", "password": "Mot de passe", "sign_in": "Se connecter",
		"accounts": "Comptes de démonstration", "accounts_caption": "Comptes avec lesquels vous pouvez vous connecter à ce fournisseur de démonstration",
		"groups": "Groupes", "none": "aucun", "not_verified": "non vérifié",
		msgBadCredentials:  "Nom d'utilisateur ou mot de passe incorrect.",
		msgUnknownRequest:  "Cette demande de connexion est inconnue ou a expiré. Retournez à l'application et recommencez.",
		msgUnreadable:      "Le formulaire n'a pas pu être lu.",
		"signed_out_title": "Déconnecté", "signed_out": "Vous êtes déconnecté du fournisseur d'identité de démonstration.",
	},
}
