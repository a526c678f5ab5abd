package broker

import (
	"maps"
	"net/http"
	"slices"

	"github.com/oidc-broker/oidc-broker/broker/pages"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The end-session page: an RP-Initiated Logout request too long for a URL
// (an ID token with many groups) goes to the IdP as a form POST, which a
// page of the broker makes the browser send (docs/logout.md).

// renderEndSession answers with the page that posts req to the IdP. The
// ID token is only in the form: Cache-Control no-store (the pages'
// headers) keeps the page out of caches, and no Referer leaves it.
func (s *Server) renderEndSession(w http.ResponseWriter, r *http.Request, idp string, req providers.EndSessionRequest) {
	f := s.frame(r)
	data := pages.EndSession{Frame: f, Title: f.T["signing_out_title"], IdP: idp, Action: req.Endpoint}
	for _, name := range slices.Sorted(maps.Keys(req.Params)) {
		for _, v := range req.Params[name] {
			data.Fields = append(data.Fields, pages.EndSessionField{Name: name, Value: v})
		}
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.renderPage(w, r, http.StatusOK, pages.EndSessionTemplate, data, pages.EndSessionScriptSrc)
}
