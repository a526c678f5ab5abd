package selection

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Config customises the page: the `selection:` section of the broker's
// configuration. The zero value is a plain English page. docs/selection.md
// documents every field.
type Config struct {
	// Title is the page heading. Default: "Sign in", translated.
	Title string `yaml:"title"`
	// Logo is a local PNG, SVG, ICO or WebP file (at most 64 KiB) shown
	// above the title, served by the broker at /oauth2/static/logo.
	Logo string `yaml:"logo"`
	// Colors are the page's colours; each one optional.
	Colors Colors `yaml:"colors"`
	// FooterLinks are shown below the providers (privacy policy, help).
	FooterLinks []Link `yaml:"footer_links"`
	// TemplateDir is a directory of templates parsed over the embedded ones:
	// a select.html there replaces the page, and files that {{define}}
	// "style", "header" or "footer" replace those blocks. Parsed and tried
	// out at start-up.
	TemplateDir string `yaml:"template_dir"`
	// TranslationsDir is a directory of <language>.yaml (or .json) files that
	// add languages or override embedded texts. The language is chosen by
	// Accept-Language; English is the default.
	TranslationsDir string `yaml:"translations_dir"`
	// ListThreshold is the number of providers above which the page shows a
	// searchable, grouped list instead of big buttons. Default 8.
	ListThreshold int `yaml:"list_threshold"`
	// DiscoveryThreshold is the number of providers above which the page
	// no longer lists them all: it offers home-realm discovery (the email
	// field, when providers claim domains), a search by name that lists at
	// most MaxSearchResults matches, the Featured providers and the one
	// this browser used last. Default 100 (or ListThreshold, when that is
	// higher); when set, it must be at least ListThreshold. Set it above
	// the number of providers to list them all.
	DiscoveryThreshold int `yaml:"discovery_threshold"`
	// Featured are ids of providers the discovery view shows without a
	// search, in this order (at most MaxFeatured): the few most users
	// choose. The smaller views ignore it.
	Featured []string `yaml:"featured"`
	// AutoRedirect skips the page when exactly one provider is configured
	// and it is available. Default false.
	AutoRedirect bool `yaml:"auto_redirect"`
	// LastUsedKey signs the cookie that remembers the last provider used on
	// a browser (at least 32 bytes; use ${VAR}). Default: a random key per
	// process, so replicas behind one load balancer need a shared one.
	LastUsedKey string `yaml:"last_used_key"`
}

// Colors are CSS hex colours (#rgb or #rrggbb). Arbitrary CSS is never
// accepted.
type Colors struct {
	// Primary colours the "Continue" buttons, links and the focus ring.
	// Default #0b57d0.
	Primary string `yaml:"primary"`
	// Background is the page's background. Default #ffffff.
	Background string `yaml:"background"`
	// Text is the colour of text. Default #1b1f24.
	Text string `yaml:"text"`
}

// Link is a footer link.
type Link struct {
	Text string `yaml:"text"`
	// URL is an https URL or a path on the broker's site (/privacy).
	URL string `yaml:"url"`
}

// Defaults.
const (
	DefaultListThreshold = 8
	DefaultPrimary       = "#0b57d0"
	DefaultBackground    = "#ffffff"
	DefaultText          = "#1b1f24"
	// MinLastUsedKeyLength is the shortest LastUsedKey accepted, in bytes.
	MinLastUsedKeyLength = 32
)

// The discovery view's bounds.
const (
	// DefaultDiscoveryThreshold is DiscoveryThreshold's default.
	DefaultDiscoveryThreshold = 100
	// MaxSearchResults is the most providers the discovery view lists
	// for a search; the page says how many more match.
	MaxSearchResults = 50
	// MaxFeatured is the most ids Featured may name.
	MaxFeatured = 20
)

// Validate reports every problem in c, each prefixed with its YAML key. It
// reads the logo, the templates and the translations, as New does.
func (c Config) Validate() error {
	_, errs := build(c)
	return joinErrs(errs)
}

var hexColorRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// checkFields validates what needs no file.
func (c Config) checkFields() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Title) > 200 {
		add("title", "is longer than 200 bytes")
	}
	for field, v := range map[string]string{"colors.primary": c.Colors.Primary, "colors.background": c.Colors.Background, "colors.text": c.Colors.Text} {
		if v != "" && !hexColorRE.MatchString(v) {
			add(field, "%q must be a CSS hex colour such as #0b57d0", v)
		}
	}
	for i, l := range c.FooterLinks {
		if strings.TrimSpace(l.Text) == "" {
			add(fmt.Sprintf("footer_links[%d].text", i), "is required")
		}
		if !footerURLOK(l.URL) {
			add(fmt.Sprintf("footer_links[%d].url", i), "%q must be an https URL or a path starting with /", l.URL)
		}
	}
	if c.ListThreshold < 0 {
		add("list_threshold", "must not be negative")
	}
	switch list, discovery := c.listThreshold(), c.discoveryThreshold(); {
	case c.DiscoveryThreshold < 0:
		add("discovery_threshold", "must not be negative")
	case c.ListThreshold >= 0 && discovery < list: // only when set: the default follows list_threshold
		add("discovery_threshold", "is %d, below list_threshold (%d): it must be at least that", discovery, list)
	}
	if len(c.Featured) > MaxFeatured {
		add("featured", "names %d providers; at most %d", len(c.Featured), MaxFeatured)
	}
	seen := map[string]bool{}
	for i, id := range c.Featured {
		switch {
		case id == "":
			add(fmt.Sprintf("featured[%d]", i), "is empty: it must be a provider id")
		case seen[id]:
			add(fmt.Sprintf("featured[%d]", i), "%q is listed twice", id)
		}
		seen[id] = true
	}
	if c.LastUsedKey != "" && len(c.LastUsedKey) < MinLastUsedKeyLength {
		add("last_used_key", "must be at least %d bytes (it is %d); use a random value from ${VAR}", MinLastUsedKeyLength, len(c.LastUsedKey))
	}
	return errs
}

// listThreshold and discoveryThreshold are the thresholds in effect: the
// configured ones, or their defaults for 0.
func (c Config) listThreshold() int {
	if c.ListThreshold == 0 {
		return DefaultListThreshold
	}
	return c.ListThreshold
}

func (c Config) discoveryThreshold() int {
	if c.DiscoveryThreshold == 0 {
		return max(DefaultDiscoveryThreshold, c.listThreshold())
	}
	return c.DiscoveryThreshold
}

func footerURLOK(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || strings.ContainsAny(raw, "\\ \t\r\n") {
		return false
	}
	if u.Scheme == "" {
		return strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") && u.Host == ""
	}
	return u.Scheme == "https" && u.Host != "" && u.User == nil
}

// Warnings lists colour choices that fail WCAG 2.2 AA contrast
// (ContrastProblems), each starting with its key.
func (c Config) Warnings() []string {
	var w []string
	for _, p := range ContrastProblems(c) {
		w = append(w, p.String())
	}
	return w
}

// Palette is the page's colours as CSS values, derived from Config.Colors:
// the three configured ones and shades computed from them so that muted
// text and borders keep AA contrast. Page is the backdrop around the card
// (Background, a shade towards Text), Soft the colour of decorative
// lines, and the Alert colours those of error messages.
type Palette struct {
	Primary, OnPrimary, Background, Text, Muted, Border, Hover, Disabled, DisabledText template.CSS
	Page, Soft, AlertBackground, AlertText, AlertBorder                                template.CSS
}

type rgb [3]float64

type palette struct{ primary, background, text rgb }

func (c Config) palette() palette {
	return palette{
		primary:    parseHex(orDefault(c.Colors.Primary, DefaultPrimary)),
		background: parseHex(orDefault(c.Colors.Background, DefaultBackground)),
		text:       parseHex(orDefault(c.Colors.Text, DefaultText)),
	}
}

// The dark scheme's background and text, used with prefers-color-scheme:
// dark when neither colors.background nor colors.text is configured.
var (
	darkBackground = rgb{0x1e, 0x20, 0x25}
	darkText       = rgb{0xe8, 0xea, 0xed}
)

// dark returns the palette for prefers-color-scheme: dark, or false when
// the configuration fixes the background or the text colour (a brand's
// own scheme is kept as it is). The primary colour is lightened until it
// keeps AA contrast on the dark background.
func (c Config) dark() (palette, bool) {
	if c.Colors.Background != "" || c.Colors.Text != "" {
		return palette{}, false
	}
	p := palette{primary: c.palette().primary, background: darkBackground, text: darkText}
	for t := 0.0; t <= 1 && contrast(p.primary, p.background) < MinTextContrast+0.1; t += 0.05 {
		p.primary = mix(rgb{255, 255, 255}, c.palette().primary, t)
	}
	return p, true
}

// css derives the page's palette. Only validated hex colours get here.
func (p palette) css() Palette {
	onPrimary := onColor(p.primary)
	muted := p.text
	for t := 0.6; t < 1; t += 0.05 {
		if m := mix(p.text, p.background, t); contrast(m, p.background) >= 4.6 {
			muted = m
			break
		}
	}
	darkBg := luminance(p.background) < 0.2
	alertBg, alertText, alertBorder := rgb{0xfd, 0xec, 0xea}, rgb{0x1b, 0x1f, 0x24}, rgb{0xb3, 0x26, 0x1e}
	page := mix(p.text, p.background, 0.045)
	if darkBg {
		page = mix(rgb{}, p.background, 0.3)
		alertBg, alertText, alertBorder = rgb{0x41, 0x1d, 0x1b}, rgb{0xf9, 0xde, 0xdc}, rgb{0xf2, 0xb8, 0xb5}
	}
	return Palette{
		Primary: p.primary.css(), OnPrimary: onPrimary.css(), Background: p.background.css(), Text: p.text.css(),
		Muted: muted.css(), Border: muted.css(),
		Hover:    mix(p.primary, p.background, 0.08).css(),
		Disabled: mix(p.text, p.background, 0.07).css(), DisabledText: muted.css(),
		Page: page.css(), Soft: mix(p.text, p.background, 0.16).css(),
		AlertBackground: alertBg.css(), AlertText: alertText.css(), AlertBorder: alertBorder.css(),
	}
}

// colorScheme is the CSS color-scheme of the pages: "light dark" when the
// dark palette applies, else the one the background is.
func (c Config) colorScheme() string {
	if _, ok := c.dark(); ok {
		return "light dark"
	}
	if luminance(c.palette().background) < 0.2 {
		return "dark"
	}
	return "light"
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parseHex(s string) rgb {
	s = strings.TrimPrefix(s, "#")
	if len(s) == 3 {
		s = string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]})
	}
	var c rgb
	for i := range 3 {
		v, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		c[i] = float64(v)
	}
	return c
}

func (c rgb) css() template.CSS {
	return template.CSS(fmt.Sprintf("#%02x%02x%02x", int(math.Round(c[0])), int(math.Round(c[1])), int(math.Round(c[2]))))
}

// mix returns a weighted mix: t of a, 1-t of b.
func mix(a, b rgb, t float64) rgb {
	var c rgb
	for i := range 3 {
		c[i] = math.Round(a[i]*t + b[i]*(1-t))
	}
	return c
}

// contrast is the WCAG 2 contrast ratio of two colours.
func contrast(a, b rgb) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(c rgb) float64 {
	var l [3]float64
	for i, v := range c {
		v /= 255
		if v <= 0.04045 {
			l[i] = v / 12.92
		} else {
			l[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}
