package broker

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// errorPage is a friendly page: what happened and what to do. Details go to
// the log, never to the page.
type errorPage struct {
	Status    int
	Title     string
	Message   string
	RetryURL  string
	RequestID string
}

func (s *Server) renderError(w http.ResponseWriter, p errorPage) {
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	s.render(w, p.Status, "error.html", p)
}

// render executes a page template into a buffer first, so a template error
// never sends half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	s.renderPage(w, status, name, data, "")
}

// renderPage is render; scriptSrc, when set, is the CSP source list of the
// page's inline scripts (their hashes), which the pages' CSP otherwise
// forbids.
func (s *Server) renderPage(w http.ResponseWriter, status int, name string, data any, scriptSrc string) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render page", "template", name, "error", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w.Header())
	if scriptSrc != "" {
		w.Header().Set("Content-Security-Policy", w.Header().Get("Content-Security-Policy")+"; script-src "+scriptSrc)
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.opts.Now() }
