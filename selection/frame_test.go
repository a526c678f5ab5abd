package selection

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"strings"
	"testing"
	"testing/fstest"
)

// The stylesheet is sent inline; the CSP allows it by its hash, so the
// bytes inside <style> must hash to StyleSrc exactly.
func TestStyleHashMatchesRenderedPage(t *testing.T) {
	for _, cfg := range []Config{{}, {Colors: Colors{Primary: "#6b21a8", Background: "#fafafa"}}} {
		p := mustPage(t, cfg)
		html := render(t, p, mustCatalog(t, []Provider{{ID: "a", Name: "A"}}), Request{Links: testLinks("%2F")})
		_, rest, _ := strings.Cut(html, "<style>")
		css, _, ok := strings.Cut(rest, "</style>")
		if !ok {
			t.Fatal("no <style> element")
		}
		sum := sha256.Sum256([]byte(css))
		if got := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; got != p.StyleSrc() {
			t.Errorf("style hash %s, StyleSrc %s", got, p.StyleSrc())
		}
		if strings.Contains(css, "ZgotmplZ") {
			t.Errorf("the stylesheet was escaped: %s", css)
		}
	}
}

func TestDarkSchemeOnlyWithDefaultBackgroundAndText(t *testing.T) {
	p := mustPage(t, Config{Colors: Colors{Primary: "#0b57d0"}})
	if !strings.Contains(string(p.style), "prefers-color-scheme: dark") || p.colorScheme != "light dark" {
		t.Errorf("default background: no dark scheme (%s)", p.colorScheme)
	}
	dark, _ := Config{Colors: Colors{Primary: "#0b57d0"}}.dark()
	if r := contrast(dark.primary, dark.background); r < MinTextContrast {
		t.Errorf("dark primary %s: contrast %.2f", dark.primary.css(), r)
	}
	css := dark.css()
	for name, pair := range map[string][2]template.CSS{
		"text": {css.Text, css.Background}, "muted": {css.Muted, css.Background},
		"label": {css.OnPrimary, css.Primary}, "alert": {css.AlertText, css.AlertBackground},
	} {
		if r := contrast(parseHex(string(pair[0])), parseHex(string(pair[1]))); r < MinTextContrast {
			t.Errorf("dark %s: contrast %.2f", name, r)
		}
	}
	p = mustPage(t, Config{Colors: Colors{Background: "#fff8e7"}})
	if strings.Contains(string(p.style), "prefers-color-scheme: dark") || p.colorScheme != "light" {
		t.Errorf("a configured background got a dark scheme (%s)", p.colorScheme)
	}
}

func TestTemplatesShareTheFrame(t *testing.T) {
	p := mustPage(t, Config{Title: "Example Corp", Logo: "testdata/logo.svg", TemplateDir: "testdata/theme"})
	tmpl, err := p.Templates(fstest.MapFS{"page.html": {Data: []byte(`{{template "doc-head" .}}<p>{{.T.signed_out}}</p>{{template "doc-foot" .}}`)}}, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	data := struct {
		Frame
		Title string
	}{p.Frame("de-CH,de;q=0.9", "/s/"), "Abgemeldet"}
	if err := tmpl.ExecuteTemplate(&b, "page.html", data); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<html lang="de">`, `<title>Abgemeldet – Example Corp</title>`, `<img class="logo" src="/s/logo?v=`,
		`<p class="brand">Example Corp</p>`, "<p>Sie sind abgemeldet.</p>", `<footer class="custom">Operated by Example IT</footer>`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
}
