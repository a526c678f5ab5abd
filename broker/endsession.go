package broker

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"net/http"
	"slices"

	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/selection"
)

// The end-session page: an RP-Initiated Logout request too long for a URL
// (an ID token with many groups) goes to the IdP as a form POST, which a
// page of the broker makes the browser send (docs/logout.md).

// endSessionTemplate is the page; its one inline script submits the form.
const endSessionTemplate = "end_session.html"

// endSessionScriptSrc is the CSP source that allows the page's inline
// script and no other: its SHA-256 (CSP Level 3 hash-source), taken from
// the template itself, so that the two cannot drift apart.
var endSessionScriptSrc = scriptHashSource("templates/" + endSessionTemplate)

// endSessionData fills end_session.html.
type endSessionData struct {
	selection.Frame
	Title  string
	IdP    string // the provider's display name
	Action string // the IdP's end_session_endpoint
	Fields []endSessionField
}

type endSessionField struct{ Name, Value string }

// renderEndSession answers with the page that posts req to the IdP. The
// ID token is only in the form: Cache-Control no-store (the pages'
// headers) keeps the page out of caches, and no Referer leaves it.
func (s *Server) renderEndSession(w http.ResponseWriter, r *http.Request, idp string, req providers.EndSessionRequest) {
	f := s.frame(r)
	data := endSessionData{Frame: f, Title: f.T["signing_out_title"], IdP: idp, Action: req.Endpoint}
	for _, name := range slices.Sorted(maps.Keys(req.Params)) {
		for _, v := range req.Params[name] {
			data.Fields = append(data.Fields, endSessionField{Name: name, Value: v})
		}
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.renderPage(w, r, http.StatusOK, endSessionTemplate, data, endSessionScriptSrc)
}

// scriptHashSource returns the 'sha256-…' CSP source of the inline script
// of the template file name, which must have exactly one, without template
// actions (html/template copies the text between the tags unchanged).
func scriptHashSource(name string) string {
	page, err := templateFS.ReadFile(name)
	if err != nil {
		panic("broker: " + err.Error())
	}
	_, rest, ok := bytes.Cut(page, []byte("<script>"))
	script, after, ok2 := bytes.Cut(rest, []byte("</script>"))
	if !ok || !ok2 || bytes.Contains(script, []byte("{{")) || bytes.Contains(after, []byte("<script")) {
		panic("broker: " + name + " must hold one inline script without template actions")
	}
	sum := sha256.Sum256(script)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
