// Package pages is the broker's own HTML pages (errors, the 403, the local
// login form, sign-out, the end-session form post): their templates, the
// data the error and end-session pages are executed with, and how a page
// or an API client's JSON error is written with its security headers
// (no-store, nosniff, no framing, a Content-Security-Policy that allows
// the inline stylesheet and the page's own scripts only). Which page to
// show, and its texts, stay with the broker's handlers.
package pages

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/oidc-broker/oidc-broker/selection"
)

// FS holds the templates, executed in the sign-in page's frame
// (selection.Page Templates) by the name of their file.
//
//go:embed templates/*.html
var FS embed.FS

// Pattern is the templates' files in FS.
const Pattern = "templates/*.html"

// Error is what error.html is executed with.
type Error struct {
	selection.Frame
	Title, Message      string
	Status              int
	RetryURL, RequestID string
	Denied              *Denied
}

// Denied is the 403 page's account box and its ways on: "Use another
// account" signs out (a CSRF-protected POST) and then goes to the sign-in
// page with the denied request's rd; "Go back" goes to the page the user
// came from when it is an allowed redirect, else to the root.
type Denied struct {
	User, Provider    string
	SignOutAction     string
	CSRF, SwitchRD    string
	BackURL           string
	SignOutConfirmURL string // without a CSRF token: the confirmation page
}

// EndSessionTemplate is the page that posts an RP-Initiated Logout request
// to the IdP; its one inline script submits the form.
const EndSessionTemplate = "end_session.html"

// EndSessionScriptSrc is the CSP source that allows the end-session page's
// inline script and no other: its SHA-256 (CSP Level 3 hash-source), taken
// from the template itself, so that the two cannot drift apart.
var EndSessionScriptSrc = scriptHashSource("templates/" + EndSessionTemplate)

// EndSession fills end_session.html.
type EndSession struct {
	selection.Frame
	Title  string
	IdP    string // the provider's display name
	Action string // the IdP's end_session_endpoint
	Fields []EndSessionField
}

// EndSessionField is one hidden field of the end-session form.
type EndSessionField struct{ Name, Value string }

// scriptHashSource returns the 'sha256-…' CSP source of the inline script
// of the template file name, which must have exactly one, without template
// actions (html/template copies the text between the tags unchanged).
func scriptHashSource(name string) string {
	page, err := FS.ReadFile(name)
	if err != nil {
		panic("pages: " + err.Error())
	}
	_, rest, ok := bytes.Cut(page, []byte("<script>"))
	script, after, ok2 := bytes.Cut(rest, []byte("</script>"))
	if !ok || !ok2 || bytes.Contains(script, []byte("{{")) || bytes.Contains(after, []byte("<script")) {
		panic("pages: " + name + " must hold one inline script without template actions")
	}
	sum := sha256.Sum256(script)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Write executes the template name into a buffer first, so a template
// error never sends half a page (the error is returned and nothing is
// written), then answers with it and the pages' headers. styleSrc is the
// stylesheet's CSP source, origin the broker's (the images' origin), and
// scriptSrc, when set, the CSP sources of the page's inline scripts.
func Write(w http.ResponseWriter, t *template.Template, status int, name string, data any, styleSrc, origin, scriptSrc string) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("pages: %s: %w", name, err)
	}
	h := w.Header()
	SetHeaders(h, styleSrc, origin)
	h.Set("Content-Security-Policy", CSP(styleSrc, origin, scriptSrc))
	h.Add("Vary", "Accept-Language")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
	return nil
}

// SetHeaders sets a page's headers: HTML, never cached, not sniffed, not
// framed, and the CSP without scripts.
func SetHeaders(h http.Header, styleSrc, origin string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", CSP(styleSrc, origin, ""))
}

// CSP is the pages' Content-Security-Policy: nothing but the inline
// stylesheet (by its hash, selection.Page.StyleSrc), images from the
// broker's origin (the logo and icons; the page itself may be on an
// application's origin, a forward-auth 403), forms to http(s), and the
// scripts of scriptSrc ("" for none).
func CSP(styleSrc, origin, scriptSrc string) string {
	csp := "default-src 'none'; style-src " + styleSrc + "; img-src 'self' " + origin
	if scriptSrc != "" {
		csp += "; script-src " + scriptSrc
	}
	return csp + "; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"
}

// WantsJSON: the client asks for JSON and not for a page.
func WantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

// WriteErrorJSON is an error for API clients: a stable code, the English
// message, the request ID, and for a 403 of an access rule (d) who is
// signed in.
func WriteErrorJSON(w http.ResponseWriter, status int, code, msg, id string, d *Denied) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := struct {
		Error     string `json:"error"`
		Message   string `json:"message"`
		RequestID string `json:"request_id,omitempty"`
		User      string `json:"user,omitempty"`
		Provider  string `json:"provider,omitempty"`
	}{Error: code, Message: msg, RequestID: id}
	if d != nil {
		body.User, body.Provider = d.User, d.Provider
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Early answers a request refused before its host is known to be one of
// the broker's (so before any page, whose links would name that host):
// JSON for a client that asks for it, plain text otherwise.
func Early(w http.ResponseWriter, r *http.Request, status int, code, msg, id string) {
	if WantsJSON(r) {
		WriteErrorJSON(w, status, code, msg, id, nil)
		return
	}
	http.Error(w, msg, status)
}
