package selection

import (
	"net/url"
	"strings"
	"sync"
)

// The provider section of a page without a search is the same for every
// request of one language, view and static path while no provider's
// availability changes, except for each link's start URL, which carries
// the request's rd. For ten thousand providers writing it afresh costs
// tens of milliseconds and megabytes of garbage per page (issue 18), so
// it is written once with holes where the per-request part of the start
// URLs goes, kept, and each request fills the holes: with its escaped
// Links.StartQuery when the links are given as StartBase and StartQuery
// (what the broker does), else with each Links.Start(id), escaped. The
// kept sections are few and bounded: one per (catalog, language, view,
// static path, start base), replaced when an availability changes, all
// dropped at once past maxSections.

// maxSections bounds the kept sections: a handful of languages, two
// views, and the catalog of a reload before the old one is gone.
const maxSections = 16

type sectionKey struct {
	cat       *Catalog
	lang      *language
	compact   bool
	static    string
	startBase string // "" when each hole is a whole Start(id)
}

// section is a provider section with holes: parts[k] comes before hole k,
// which is provider holes[k]'s start URL, or only its query with a start
// base; parts has one more element, the end.
type section struct {
	available []bool // by position in the page's order, what it was written for
	parts     []string
	holes     []string
	size      int // bytes of parts
}

type sectionCache struct {
	mu sync.Mutex
	m  map[sectionKey]*section
}

// cachedProviders returns the section for d from the cache, building and
// keeping it when there is none for d's availabilities; ok is false when
// d's section is not cached (a search, or start links that safeURL would
// refuse, which the fresh writer handles).
func (d *TemplateData) cachedProviders() (string, bool) {
	l := &d.req.Links
	if d.Query != "" || d.Discovery || d.page == nil { // the discovery view's few are written afresh
		return "", false
	}
	key := sectionKey{cat: d.cat, lang: d.lang, compact: d.Compact, static: l.Static}
	if l.Start == nil {
		if l.StartBase == "" || safeURL(l.StartBase+l.StartQuery) == unsafeURL {
			return "", false
		}
		key.startBase = l.StartBase
	}
	c := &d.page.sections
	c.mu.Lock()
	s := c.m[key]
	c.mu.Unlock()
	if s == nil || !s.matches(d.statuses) {
		s = d.buildSection(key.startBase)
		c.mu.Lock()
		if c.m == nil {
			c.m = make(map[sectionKey]*section)
		}
		if len(c.m) >= maxSections { // sections of an earlier catalog go first
			for k := range c.m {
				if k.cat != d.cat {
					delete(c.m, k)
				}
			}
		}
		// Still full: this section serves this request only. Emptying the
		// cache instead would let a client that varies what the key is made
		// of (Host without public_url) rebuild every section on each page.
		if _, kept := c.m[key]; kept || len(c.m) < maxSections {
			c.m[key] = s
		}
		c.mu.Unlock()
	}
	if key.startBase != "" {
		return s.fillQuery(escapeHTML(l.StartQuery)), true
	}
	return s.fill(l), true
}

func (s *section) matches(sts []Status) bool {
	if len(sts) != len(s.available) {
		return false
	}
	for k, st := range sts {
		if st.Available != s.available[k] {
			return false
		}
	}
	return true
}

// buildSection writes d's section with holes for the start URLs, or with
// base, for their queries. safeURL's checks pass for base + query (see
// cachedProviders), and url.PathEscape leaves no character they refuse in
// an id, so each link base + id + query escapes to the base and id
// escaped here followed by the query escaped per request.
func (d *TemplateData) buildSection(base string) *section {
	s := &section{available: make([]bool, len(d.statuses))}
	for k, st := range d.statuses {
		s.available[k] = st.Available
	}
	var b strings.Builder
	b.Grow(256 * len(d.visible))
	d.hole = func(id string) {
		if base != "" {
			b.WriteString(escapeHTML(base + url.PathEscape(id)))
		}
		s.parts = append(s.parts, b.String()[s.size:])
		s.size = b.Len()
		s.holes = append(s.holes, id)
	}
	d.writeProviders(&b)
	d.hole = nil
	s.parts = append(s.parts, b.String()[s.size:])
	s.size = b.Len()
	return s
}

// fill writes s with l's start URLs, escaped, in its holes.
func (s *section) fill(l *Links) string {
	var b strings.Builder
	b.Grow(s.size + len(s.holes)*(len(l.Start(""))+24))
	for k, id := range s.holes {
		b.WriteString(s.parts[k])
		b.WriteString(safeURL(l.Start(id)))
	}
	b.WriteString(s.parts[len(s.parts)-1])
	return b.String()
}

// fillQuery writes s with the escaped start query q in its holes.
func (s *section) fillQuery(q string) string {
	var b strings.Builder
	b.Grow(s.size + len(s.holes)*len(q))
	for _, p := range s.parts[:len(s.parts)-1] {
		b.WriteString(p)
		b.WriteString(q)
	}
	b.WriteString(s.parts[len(s.parts)-1])
	return b.String()
}
