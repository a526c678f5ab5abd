// Package selection renders the identity-provider selection page ("Sign in
// with ..."). It is server-rendered with html/template, needs no JavaScript,
// and never touches sessions or tokens: the broker hands it a list of
// options and it writes HTML.
package selection

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed templates/*.html
var templateFS embed.FS

// Config customises the page.
type Config struct {
	// Title is the page heading. Default: "Sign in".
	Title string `yaml:"title"`
}

// Option is one provider on the page.
type Option struct {
	ID   string
	Name string
	// StartURL is where the button leads (the broker's start URL for this
	// provider, with the post-login redirect already attached).
	StartURL string
	// Available is false for an IdP that is known to be down; it is shown
	// disabled with Reason, not hidden.
	Available bool
	Reason    string
}

// Data is everything one rendering needs.
type Data struct {
	Options []Option
	// Message is an optional notice shown above the buttons, e.g. after a
	// failed login.
	Message string
}

// Page renders the selection page. It is safe for concurrent use.
type Page struct {
	title string
	tmpl  *template.Template
}

// New parses the embedded template.
func New(cfg Config) (*Page, error) {
	tmpl, err := template.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("selection: %w", err)
	}
	title := cfg.Title
	if title == "" {
		title = "Sign in"
	}
	return &Page{title: title, tmpl: tmpl}, nil
}

// Render writes the page. Rendering happens into a buffer first, so a
// template error never leaves a half-written page behind.
func (p *Page) Render(w io.Writer, d Data) error {
	var buf bytes.Buffer
	err := p.tmpl.ExecuteTemplate(&buf, "select.html", struct {
		Title string
		Data
	}{p.title, d})
	if err != nil {
		return fmt.Errorf("selection: %w", err)
	}
	_, err = buf.WriteTo(w)
	return err
}
