package pages

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEndSessionScriptSrcIsTheTemplatesScript: the CSP hash is the hash of
// the script the template holds, so the page runs it and nothing else.
func TestEndSessionScriptSrcIsTheTemplatesScript(t *testing.T) {
	page, err := FS.ReadFile("templates/" + EndSessionTemplate)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := bytes.Cut(page, []byte("<script>"))
	script, _, _ := bytes.Cut(rest, []byte("</script>"))
	sum := sha256.Sum256(script)
	if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; EndSessionScriptSrc != want {
		t.Errorf("EndSessionScriptSrc = %s, want %s", EndSessionScriptSrc, want)
	}
}

// TestWriteNeverSendsHalfAPage: a template that fails sends nothing; one
// that works goes out with the pages' headers.
func TestWriteNeverSendsHalfAPage(t *testing.T) {
	tpl := template.Must(template.New("p.html").Parse(`<p>{{.A}}</p>{{.Missing.X}}`))
	rec := httptest.NewRecorder()
	if err := Write(rec, tpl, http.StatusOK, "p.html", struct{ A string }{"a"}, "'sha256-s'", "https://b.example", ""); err == nil {
		t.Fatal("a failing template was written")
	}
	if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Errorf("wrote %q with %v", rec.Body, rec.Header())
	}
	tpl = template.Must(template.New("p.html").Parse(`<p>{{.A}}</p>`))
	rec = httptest.NewRecorder()
	if err := Write(rec, tpl, http.StatusForbidden, "p.html", struct{ A string }{"<a>"}, "'sha256-s'", "https://b.example", "'sha256-j'"); err != nil {
		t.Fatal(err)
	}
	h := rec.Result().Header
	want := "default-src 'none'; style-src 'sha256-s'; img-src 'self' https://b.example; script-src 'sha256-j'; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"
	if rec.Code != http.StatusForbidden || rec.Body.String() != "<p>&lt;a&gt;</p>" || h.Get("Content-Security-Policy") != want ||
		h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("got %d %q %v", rec.Code, rec.Body, h)
	}
}

// TestEarly: JSON to a client that asks for it, plain text otherwise.
func TestEarly(t *testing.T) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	Early(rec, r, http.StatusBadRequest, "bad_host", "Bad Request: unknown host", "id1")
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "bad_host" || body["request_id"] != "id1" || rec.Code != 400 {
		t.Errorf("JSON: %d %q (%v)", rec.Code, rec.Body, err)
	}
	r.Header.Set("Accept", "text/html, application/json")
	rec = httptest.NewRecorder()
	Early(rec, r, http.StatusBadRequest, "bad_host", "Bad Request: unknown host", "id1")
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || rec.Body.String() != "Bad Request: unknown host\n" {
		t.Errorf("text: %v %q", rec.Header(), rec.Body)
	}
}
