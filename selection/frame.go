package selection

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

// The frame every page shares. The sign-in page, the broker's other pages
// (errors, 403, the local login form, sign-out) and the demo IdP's pages
// are one visual system: they are executed with the templates of
// templates/layout.html ("doc-head", "doc-foot" and the "header" and
// "footer" blocks a template_dir can replace) and carry the fields of a
// Frame, so that the branding, the stylesheet and the language of the
// sign-in page apply to each of them.

// Frame is what every page's template data carries besides its own fields
// and its Title.
type Frame struct {
	// Lang is the chosen language's tag, for <html lang>.
	Lang string
	// T are the messages in that language.
	T Messages
	// Brand is Config.Title; "" when none is configured.
	Brand string
	// LogoURL links to the logo; "" without one.
	LogoURL string
	// Style is the stylesheet, sent inline in <style> and allowed by the
	// Content-Security-Policy source StyleSrc.
	Style template.CSS
	// ColorScheme is the <meta name="color-scheme"> content.
	ColorScheme string
	// FooterLinks come from the configuration.
	FooterLinks []Link
	// ScriptURL is a script the page loads; "" for none.
	ScriptURL string
}

// Frame returns the frame of a page in the language acceptLanguage picks;
// static is the base URL of the assets (…/oauth2/static/), where the logo
// is served.
func (p *Page) Frame(acceptLanguage, static string) Frame {
	lang := p.tr.match(acceptLanguage)
	f := Frame{Lang: lang.tag, T: lang.msgs, Brand: p.cfg.Title, Style: p.style, ColorScheme: p.colorScheme,
		FooterLinks: p.cfg.FooterLinks}
	if p.logo != nil {
		f.LogoURL = static + logoName + "?v=" + p.logo.Hash
	}
	return f
}

// StyleSrc is the Content-Security-Policy source that allows the pages'
// inline stylesheet and no other style: its SHA-256 (CSP Level 3
// hash-source). Pages are served with "style-src " + StyleSrc().
func (p *Page) StyleSrc() string { return p.styleSrc }

// Templates returns the frame's templates (with a template_dir's "header",
// "footer" and "style") and the templates of fsys matching patterns parsed
// over them: the pages of another package in the same visual system.
func (p *Page) Templates(fsys fs.FS, patterns ...string) (*template.Template, error) {
	t, err := p.base.Clone()
	if err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	if t, err = t.ParseFS(fsys, patterns...); err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	return t, nil
}

// styleData is what the "style" template is executed with, once.
type styleData struct {
	Palette Palette
	// Dark is the palette for prefers-color-scheme: dark; nil when the
	// configuration fixes the background or the text colour.
	Dark *Palette
}

// buildStyle renders the stylesheet and its CSP hash source.
func (p *Page) buildStyle() error {
	d := styleData{Palette: p.palette}
	if dark, ok := p.cfg.dark(); ok {
		css := dark.css()
		d.Dark = &css
	}
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "style", d); err != nil {
		return err
	}
	css := strings.TrimSpace(buf.String())
	if strings.Contains(strings.ToLower(css), "</style") {
		return fmt.Errorf(`the "style" template must not close the <style> element`)
	}
	p.style = template.CSS("\n" + css + "\n")
	sum := sha256.Sum256([]byte(p.style))
	p.styleSrc = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	p.colorScheme = p.cfg.colorScheme()
	return nil
}
