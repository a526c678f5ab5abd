// Package selection renders the identity-provider selection page ("Sign in
// with ...") and makes the page's choices: home-realm discovery (an email
// domain leads to a provider), search, ordering and grouping. It is
// server-rendered with html/template and embedded assets, works without
// JavaScript, and never touches sessions or tokens: the broker hands it the
// providers, each request's facts and URLs, and it writes HTML.
//
// A [Page] is the configured look and words (templates, translations,
// branding); a [Catalog] is the providers, prepared once; a [Request] is
// what one rendering needs. docs/selection.md describes the page, its
// settings and the data custom templates receive.
package selection

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
)

//go:embed templates/*.html
var templateFS embed.FS

// Page renders the selection page. It is immutable and safe for concurrent
// use.
type Page struct {
	cfg       Config
	tmpl      *template.Template
	base      *template.Template // never executed, for Templates to clone
	tr        *translations
	palette   Palette
	logo      *Asset
	threshold int
	// discovery is the number of providers above which the page shows
	// the discovery view (Config.DiscoveryThreshold).
	discovery int
	// style is the stylesheet every page sends inline (frame.go),
	// styleSrc its CSP source, colorScheme the color-scheme it supports.
	style                 template.CSS
	styleSrc, colorScheme string
	// sections keeps provider sections written once (sectioncache.go).
	sections sectionCache
}

// New validates cfg and builds the page: it parses the embedded templates
// and those of cfg.TemplateDir over them and tries them out, loads the
// translations and the logo. Every problem is reported at once.
func New(cfg Config) (*Page, error) {
	p, errs := build(cfg)
	if err := joinErrs(errs); err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	return p, nil
}

func build(cfg Config) (*Page, []error) {
	errs := cfg.checkFields()
	p := &Page{cfg: cfg, threshold: cfg.listThreshold(), discovery: cfg.discoveryThreshold()}
	if len(errs) == 0 {
		p.palette = cfg.palette().css()
	}
	if cfg.Logo != "" {
		if a, err := LoadImage(cfg.Logo); err != nil {
			errs = append(errs, fmt.Errorf("logo: %w", err))
		} else {
			p.logo = &a
		}
	}
	var trErrs []error
	p.tr, trErrs = loadTranslations(cfg.TranslationsDir)
	for _, e := range trErrs {
		errs = append(errs, fmt.Errorf("translations_dir: %w", e))
	}
	var err error
	if p.tmpl, err = parseTemplates(cfg.TemplateDir); err != nil {
		errs = append(errs, fmt.Errorf("template_dir: %w", err))
	} else if p.base, err = p.tmpl.Clone(); err != nil {
		errs = append(errs, fmt.Errorf("template_dir: %w", err))
	}
	if len(errs) == 0 {
		if err := p.buildStyle(); err != nil {
			errs = append(errs, fmt.Errorf("template_dir: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := p.tryOut(); err != nil {
			errs = append(errs, fmt.Errorf("template_dir: %w", err))
		}
	}
	return p, errs
}

// parseTemplates parses the embedded templates, then dir's *.html over them.
func parseTemplates(dir string) (*template.Template, error) {
	t, err := template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return t, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%q is not a readable directory", dir)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.html"))
	if len(files) == 0 {
		return nil, fmt.Errorf("%q has no *.html template", dir)
	}
	return t.ParseFiles(files...)
}

// tryOut renders a sample page in every mode, so that a custom template
// that fails (a misspelt field) fails at start-up, not on a user's visit.
func (p *Page) tryOut() error {
	cat, err := NewCatalog([]Provider{
		{ID: "one", Name: "One", Domains: []string{"one.example"}, Group: "A"},
		{ID: "two", Name: "Two"},
	})
	if err != nil {
		return err
	}
	links := Links{SignIn: "/oauth2/sign_in", Static: "/oauth2/static/", Start: func(id string) string { return "/oauth2/start/" + id }}
	for _, view := range [][2]bool{{false, false}, {true, false}, {true, true}} { // buttons, list, discovery
		for _, req := range []Request{
			{Links: links, RD: "/"},
			{Links: links, RD: "/", LastUsed: "one", Notice: Notice{Kind: UnknownDomain, Value: "x.example"}, OfferRemember: true, Remember: true},
			{Links: links, RD: "/", Query: "o", Login: "a@b", Status: func(string) Status { return Status{Reason: "down"} }},
		} {
			d := p.dataIn(cat, &req, view[0], view[1])
			if err := p.execute(io.Discard, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Asset returns the asset named name under /oauth2/static/: "logo",
// "select.js", or "icons/<provider>" from c.
func (p *Page) Asset(c *Catalog, name string) (Asset, bool) {
	switch {
	case name == scriptName:
		return script, true
	case name == logoName && p.logo != nil:
		return *p.logo, true
	case c != nil && len(name) > len("icons/") && name[:len("icons/")] == "icons/":
		return c.Icon(name[len("icons/"):])
	}
	return Asset{}, false
}

// Asset names under /oauth2/static/.
const (
	logoName   = "logo"
	scriptName = "select.js"
)

// AutoRedirect reports whether the page should be skipped when exactly
// one provider is configured and it is available (Config.AutoRedirect).
func (p *Page) AutoRedirect() bool { return p.cfg.AutoRedirect }

// Render writes the page. Rendering happens into a buffer first, so a
// template error never leaves a half-written page behind.
func (p *Page) Render(w io.Writer, c *Catalog, req Request) error {
	return p.execute(w, p.data(c, &req))
}

func (p *Page) execute(w io.Writer, d *TemplateData) error {
	var buf bytes.Buffer
	buf.Grow(sizeHint(d))
	if err := p.tmpl.ExecuteTemplate(&buf, "select.html", d); err != nil {
		return fmt.Errorf("selection: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// sizeHint estimates the page's size, to allocate its buffer once: by the
// providers shown, not the catalog (the discovery view of ten thousand
// shows a few).
func sizeHint(d *TemplateData) int { return 8<<10 + 200*len(d.visible) }

// escapeHTML escapes text for HTML text and quoted attributes, as
// template.HTMLEscapeString does; it returns s itself, without scanning it
// twice, when there is nothing to escape.
func escapeHTML(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<', '>', '&', '\'', '"', 0:
			return template.HTMLEscapeString(s)
		}
	}
	return s
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
