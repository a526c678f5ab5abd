package selection

import (
	"strconv"
	"strings"
)

// The provider section is written here rather than by html/template, which
// spends about 3 µs per provider on reflection and escaping: too much for a
// thousand. Every value is escaped: names, ids and icon URLs once, in
// NewCatalog; URLs and reasons per request, by safeURL and escapeHTML. The
// markup is the one docs/selection.md documents (classes idp, row, icon,
// reason, n), and TestProvidersMatchTemplate checks it against the same
// markup written as a template.

// writeProviders writes the buttons, or in the compact view the list.
func (d *TemplateData) writeProviders(b *strings.Builder) {
	l := d.lang
	if d.Discovery {
		d.writeFound(b)
		return
	}
	if d.Compact {
		if len(d.visible) == 0 {
			return
		}
		b.WriteString(`<nav class="idps list" id="providers" aria-label="`)
		b.WriteString(escapeHTML(l.msgs["providers_label"]))
		b.WriteString("\">\n")
		d.writeList(b)
		b.WriteString("</nav>\n")
		return
	}
	b.WriteString(`<nav class="idps" aria-label="`)
	b.WriteString(escapeHTML(l.msgs["providers_label"]))
	b.WriteString("\">\n<ul>\n")
	if d.cat.Len() == 0 {
		b.WriteString("<li>")
		b.WriteString(escapeHTML(l.msgs["no_providers"]))
		b.WriteString("</li>\n")
	}
	static := safeURL(d.req.Links.Static)
	for k, i := range d.visible {
		e, st := &d.cat.entries[i], d.statuses[k]
		b.WriteString("<li>")
		d.openItem(b, "idp", e, st)
		d.writeIcon(b, static, e)
		b.WriteString(l.signInWith[0])
		b.WriteString(e.nameHTML)
		b.WriteString(l.signInWith[1])
		d.closeItem(b, st)
		b.WriteString("</li>\n")
	}
	b.WriteString("</ul>\n</nav>\n")
}

// writeList writes the compact list: one <ul> per group, headed by an <h2>
// when the providers have groups.
func (d *TemplateData) writeList(b *strings.Builder) {
	static := safeURL(d.req.Links.Static)
	grouped := d.cat.grouped()
	last := -1
	for k, i := range d.visible {
		e, st := &d.cat.entries[i], d.statuses[k]
		if e.group != last {
			if last >= 0 {
				b.WriteString(endGroup(grouped))
			}
			last = e.group
			if grouped {
				n := strconv.Itoa(e.group + 1)
				b.WriteString(`<section aria-labelledby="group-` + n + `"><h2 id="group-` + n + `">`)
				b.WriteString(escapeHTML(d.groupName(e.group)))
				b.WriteString("</h2>\n")
			}
			b.WriteString("<ul>\n")
		}
		d.writeRow(b, static, e, st)
	}
	b.WriteString(endGroup(grouped))
}

// writeFound writes the discovery view's providers: the featured ones
// under their heading, or a search's matches, best first, in one list
// without groups. Its id is not "providers": the script's live filter,
// made for a whole list, leaves it alone.
func (d *TemplateData) writeFound(b *strings.Builder) {
	if len(d.visible) == 0 {
		return
	}
	if d.Featured {
		b.WriteString(`<nav class="idps list" id="found" aria-labelledby="found-label">` + "\n" + `<h2 id="found-label">`)
		b.WriteString(escapeHTML(d.lang.msgs["featured_label"]))
		b.WriteString("</h2>\n<ul>\n")
	} else {
		b.WriteString(`<nav class="idps list" id="found" aria-label="`)
		b.WriteString(escapeHTML(d.lang.msgs["providers_label"]))
		b.WriteString("\">\n<ul>\n")
	}
	static := safeURL(d.req.Links.Static)
	for k, i := range d.visible {
		d.writeRow(b, static, &d.cat.entries[i], d.statuses[k])
	}
	b.WriteString("</ul>\n</nav>\n")
}

// writeRow writes one provider of a list.
func (d *TemplateData) writeRow(b *strings.Builder, static string, e *entry, st Status) {
	b.WriteString("<li>")
	d.openItem(b, "row", e, st)
	d.writeIcon(b, static, e)
	b.WriteString(`<span class="n">`)
	b.WriteString(e.nameHTML)
	b.WriteString("</span>")
	d.closeItem(b, st)
	b.WriteString("</li>\n")
}

func endGroup(grouped bool) string {
	if grouped {
		return "</ul>\n</section>\n"
	}
	return "</ul>\n"
}

// openItem writes a provider's link, or for one that is down a disabled
// element that cannot be followed.
func (d *TemplateData) openItem(b *strings.Builder, class string, e *entry, st Status) {
	b.WriteString(`<`)
	if st.Available {
		b.WriteString(`a class="` + class + `" id="idp-`)
		b.WriteString(e.idHTML)
		b.WriteString(`" href="`)
		if d.hole != nil {
			d.hole(e.ID)
		} else {
			b.WriteString(safeURL(d.req.Links.StartURL(e.ID)))
		}
		b.WriteString(`">`)
		return
	}
	b.WriteString(`span class="` + class + `" id="idp-`)
	b.WriteString(e.idHTML)
	b.WriteString(`" role="link" aria-disabled="true">`)
}

func (d *TemplateData) closeItem(b *strings.Builder, st Status) {
	if st.Available {
		b.WriteString("</a>")
		return
	}
	// One stable, translated word: the reason (st.Reason) changes from
	// one refresh to the next and is for the log, not for users.
	b.WriteString(`<span class="reason">`)
	b.WriteString(d.lang.unavailableHTML)
	b.WriteString("</span></span>")
}

func (d *TemplateData) writeIcon(b *strings.Builder, static string, e *entry) {
	if e.iconHTML == "" {
		return
	}
	b.WriteString(`<img class="icon" src="`)
	b.WriteString(static)
	b.WriteString(e.iconHTML)
	b.WriteString(`" alt="" width="20" height="20">`)
}

// unsafeURL is what safeURL returns for a URL it refuses.
const unsafeURL = "#ZgotmplZ"

// safeURL returns u escaped for an attribute when it is a path on the
// broker's origin, which is all the broker ever links to from here, and
// html/template's "#ZgotmplZ" otherwise (javascript:, //host, /\host).
func safeURL(u string) string {
	if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
		return unsafeURL
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return unsafeURL
		}
	}
	return escapeHTML(u)
}
