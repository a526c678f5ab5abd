package demo

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/selection"
)

// TestPagesInTheBrokersLook: the demo IdP's pages take the broker's look (colour, logo)
// and the browser's language, and their CSP allows exactly their stylesheet.
func TestPagesInTheBrokersLook(t *testing.T) {
	logo := filepath.Join(t.TempDir(), "logo.svg")
	if err := os.WriteFile(logo, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>`), 0o644); err != nil {
		t.Fatal(err)
	}
	look, err := selection.New(selection.Config{Logo: logo, Colors: selection.Colors{Primary: "#6b21a8"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := startIdP(t, IdPConfig{Title: "Acme", Look: look})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+loggedOutPath, nil)
	req.Header.Set("Accept-Language", "de")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{`<html lang="de">`, "--primary: #6b21a8", `<img class="logo" src="/static/logo?v=`, "Sie sind beim Demo-Identitätsanbieter abgemeldet."} {
		if !strings.Contains(page, want) {
			t.Errorf("the signed-out page lacks %q:\n%s", want, page)
		}
	}
	css := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	sum := sha256.Sum256([]byte(css[1]))
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if resp, _ := get(t, srv.Client(), srv.URL+"/static/logo"); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("logo: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
