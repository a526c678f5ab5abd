package selection

import (
	"html/template"
	"net/url"
	"strconv"
	"strings"
)

// Request is what one rendering needs from the broker.
type Request struct {
	// AcceptLanguage is the request's Accept-Language header; it picks the
	// language.
	AcceptLanguage string
	// Links are the URLs the page links to, all made by the broker.
	Links Links
	// Status reports whether a provider can be used now; nil means all can.
	Status func(id string) Status
	// RD is the validated post-login path, carried in the page's forms.
	RD string
	// Query is the search (?q=): the list shows the providers whose name
	// or id contains it, case-insensitively.
	Query string
	// Login is the email or user name typed into the home-realm field,
	// shown again in the field.
	Login string
	// Notice is a message shown above the providers.
	Notice Notice
	// LastUsed is the provider this browser used last (its verified
	// cookie), offered first as "Continue with ...".
	LastUsed string
	// OfferRemember shows the "Keep me signed in" checkbox; Remember is
	// its state. Ticking it reloads the page with remember=1, and the
	// broker's Start URLs then carry the choice.
	OfferRemember, Remember bool
}

// Links are the broker's URLs for one request, under its origin and prefix.
type Links struct {
	// SignIn is the sign-in page itself: the target of its GET forms.
	SignIn string
	// Static is the base of asset URLs, ending in "/" (…/oauth2/static/).
	Static string
	// Start returns the URL that begins a login at a provider, with the
	// post-login redirect attached. When it is nil, StartURL spells the
	// URL out from StartBase and StartQuery.
	Start func(id string) string
	// StartBase and StartQuery make the start URLs StartBase +
	// url.PathEscape(id) + StartQuery (when Start is nil). A page of many
	// providers then keeps its links written, the query left out, and
	// adds only StartQuery per request (sectioncache.go).
	StartBase, StartQuery string
}

// StartURL returns the URL that begins a login at provider id.
func (l *Links) StartURL(id string) string {
	if l.Start != nil {
		return l.Start(id)
	}
	return l.StartBase + url.PathEscape(id) + l.StartQuery
}

// Status is a provider's availability.
type Status struct {
	Available bool
	// Reason is a short, user-safe explanation when not available.
	Reason string
}

// Notice is a message above the providers: its kind, and the value it names.
type Notice struct {
	Kind NoticeKind
	// Value is the domain, login or provider id the message names. It is
	// shown as text, escaped, and cut to 100 characters.
	Value string
}

// NoticeKind is the kind of a Notice.
type NoticeKind int

// The notices. Each has a message key: notice_unknown_domain, and so on.
const (
	NoNotice            NoticeKind = iota
	UnknownDomain                  // Value: the domain no provider claims
	NoDomain                       // Value: the login without a domain
	UnknownProvider                // Value: the id of ?idp= that does not exist
	ProviderUnavailable            // Value: the id of a provider that is down
)

// TemplateData is what select.html is executed with. Besides its fields, a
// template can call Providers, Options and Groups; docs/selection.md shows
// how a custom template uses them.
type TemplateData struct {
	// Frame is what every page shares: Lang (the chosen language's tag,
	// for <html lang>), T (the messages in that language: {{.T.title}},
	// {{.T.Format "sign_in_with" "provider" .Name}}), Brand, LogoURL,
	// Style, FooterLinks, and ScriptURL (the page's
	// progressive-enhancement script, set in the compact view).
	Frame
	// Title is Config.Title, or the translated "Sign in".
	Title string
	// Palette is the page's colours as CSS values.
	Palette Palette
	// Links are the broker's URLs for this request.
	Links Links
	// RD is the validated post-login path, for hidden form fields.
	RD string
	// Notice is the translated notice, or "".
	Notice string
	// ShowLogin is true when some provider claims a domain: the page then
	// offers the email field (named "login").
	ShowLogin bool
	// Login is the value typed into that field.
	Login string
	// Compact is true above the list threshold: a searchable list instead
	// of buttons. The search field is named "q".
	Compact bool
	// Query is the search; SearchResult describes its outcome ("" without
	// a search) and ClearSearchURL shows all providers again.
	Query, SearchResult, ClearSearchURL string
	// Discovery is true above the discovery threshold: the page lists
	// only the Featured providers (Featured is then true when there are
	// some) or a search's first MaxSearchResults matches (Matches counts
	// them all), besides the last used. DiscoveryHelp is the text that
	// explains the search then ("" with a search).
	Discovery, Featured bool
	Matches             int
	DiscoveryHelp       string
	// Shown and Total count the providers shown and configured.
	Shown, Total int
	// LastUsed is the provider this browser used last, when it is known
	// and available; nil otherwise.
	LastUsed *Option
	// OfferRemember is true when the page offers "Keep me signed in": a
	// GET form to Links.SignIn with the checkbox "remember" (value 1);
	// Remember is true when it is ticked (the forms then carry it).
	OfferRemember, Remember bool

	page     *Page
	cat      *Catalog
	req      *Request
	lang     *language
	visible  []int    // entry indexes in display order
	statuses []Status // by position in visible
	options  []Option
	// hole, while a cached section is written (sectioncache.go), takes
	// the place of provider id's start URL.
	hole func(id string)
}

// Option is one provider as a template sees it.
type Option struct {
	ID, Name, Group string
	// StartURL begins a login at this provider.
	StartURL string
	// IconURL is its icon's URL; "" without one.
	IconURL string
	// Available is false for a provider that is down: it is shown
	// disabled with Reason, not hidden.
	Available bool
	Reason    string
}

// Group is a section of the compact list. Name is "" for a list without
// groups.
type Group struct {
	Name    string
	Options []Option
}

const maxEcho = 100 // longest user input the page repeats

func (p *Page) data(c *Catalog, req *Request) *TemplateData {
	return p.dataIn(c, req, c.Len() > p.threshold, c.Len() > p.discovery)
}

// dataIn is data in a given view: the compact list, the discovery view
// (which is compact too), or the buttons.
func (p *Page) dataIn(c *Catalog, req *Request, compact, discovery bool) *TemplateData {
	lang := p.tr.match(req.AcceptLanguage)
	d := &TemplateData{
		Frame: p.Frame(req.AcceptLanguage, req.Links.Static), Title: p.cfg.Title, Palette: p.palette,
		Links: req.Links, RD: req.RD, ShowLogin: c.HasDomains(), Login: cut(req.Login, maxLoginLength),
		Compact: compact || discovery, Discovery: discovery, Total: c.Len(),
		OfferRemember: req.OfferRemember, Remember: req.OfferRemember && req.Remember,
		page: p, cat: c, req: req, lang: lang,
	}
	if d.Title == "" {
		d.Title = lang.msgs["title"]
	}
	d.Brand = "" // the title is the brand
	query := strings.TrimSpace(cut(req.Query, maxEcho))
	switch {
	case d.Discovery:
		p.discover(c, d, query)
	case query != "":
		d.visible = c.filter(c.order(d.Compact), strings.ToLower(query))
		d.Query = query
		d.ClearSearchURL = clearSearchURL(d)
		key := "search_count"
		if len(d.visible) == 0 {
			key = "search_none"
		}
		d.SearchResult = lang.msgs.Format(key, "count", strconv.Itoa(len(d.visible)), "total", strconv.Itoa(c.Len()), "query", query)
	default:
		d.visible = c.order(d.Compact)
	}
	d.Shown = len(d.visible)
	// The script's live filter works on a whole list; the discovery
	// view's is a search's first matches (its nav is not #providers, so
	// the filter stays off when the script comes for the checkbox).
	if d.Compact && !d.Discovery || d.OfferRemember {
		d.ScriptURL = req.Links.Static + scriptName + "?v=" + script.Hash
	}
	d.statuses = make([]Status, len(d.visible))
	for k, i := range d.visible {
		d.statuses[k] = req.status(c.entries[i].ID)
	}
	if i, ok := c.byID[req.LastUsed]; ok {
		if st := req.status(req.LastUsed); st.Available {
			o := d.option(i, st)
			d.LastUsed = &o
		}
	}
	d.Notice = p.notice(c, lang, req.Notice)
	return d
}

func (p *Page) notice(c *Catalog, lang *language, n Notice) string {
	v := cut(n.Value, maxEcho)
	switch n.Kind {
	case UnknownDomain:
		return lang.msgs.Format("notice_unknown_domain", "domain", v)
	case NoDomain:
		return lang.msgs.Format("notice_no_domain", "login", v)
	case UnknownProvider:
		return lang.msgs.Format("notice_unknown_provider", "provider", v)
	case ProviderUnavailable:
		return lang.msgs.Format("notice_unavailable", "provider", c.Name(n.Value))
	}
	return ""
}

func (r *Request) status(id string) Status {
	if r.Status == nil {
		return Status{Available: true}
	}
	return r.Status(id)
}

// option builds the Option of entry i.
func (d *TemplateData) option(i int, st Status) Option {
	e := &d.cat.entries[i]
	o := Option{ID: e.ID, Name: e.Name, Group: e.Group, StartURL: d.req.Links.StartURL(e.ID), Available: st.Available, Reason: st.Reason}
	if e.icon != nil {
		o.IconURL = d.req.Links.Static + iconName(e.ID) + "?v=" + e.icon.Hash
	}
	return o
}

// Options returns the providers shown, in display order.
func (d *TemplateData) Options() []Option {
	if d.options == nil {
		d.options = make([]Option, len(d.visible))
		for k, i := range d.visible {
			d.options[k] = d.option(i, d.statuses[k])
		}
	}
	return d.options
}

// Groups returns the providers shown, by group, in display order; in the
// discovery view, one group without a name.
func (d *TemplateData) Groups() []Group {
	if d.Discovery { // best first, not by group
		return []Group{{Options: d.Options()}}
	}
	var gs []Group
	last := -1
	for k, o := range d.Options() {
		g := d.cat.entries[d.visible[k]].group
		if g != last {
			gs = append(gs, Group{Name: d.groupName(g)})
			last = g
		}
		gs[len(gs)-1].Options = append(gs[len(gs)-1].Options, o)
	}
	return gs
}

// groupName is a group's heading: its name, "Other" for the providers
// without one when others have one, and "" when no provider has one.
func (d *TemplateData) groupName(g int) string {
	if n := d.cat.groups[g].name; n != "" || !d.cat.grouped() {
		return n
	}
	return d.lang.msgs["group_other"]
}

// Providers returns the provider section, rendered: a button per provider,
// or in the compact view the list, by group. It is written directly from
// markup prepared in the Catalog, which keeps a page of a thousand
// providers fast.
func (d *TemplateData) Providers() template.HTML {
	if s, ok := d.cachedProviders(); ok {
		return template.HTML(s)
	}
	var b strings.Builder
	b.Grow(256 * len(d.visible))
	d.writeProviders(&b)
	return template.HTML(b.String())
}

// order returns the display order: configuration order for buttons; by
// group (groups in the order of their first provider) for the list.
func (c *Catalog) order(compact bool) []int {
	out := make([]int, 0, len(c.entries))
	if !compact {
		for i := range c.entries {
			out = append(out, i)
		}
		return out
	}
	for _, g := range c.groups {
		out = append(out, g.members...)
	}
	return out
}

// filter keeps the entries whose name or id contains q (lower-case).
func (c *Catalog) filter(idx []int, q string) []int {
	out := idx[:0]
	for _, i := range idx {
		if strings.Contains(c.entries[i].key, q) {
			out = append(out, i)
		}
	}
	return out
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
