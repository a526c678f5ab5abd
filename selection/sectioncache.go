package selection

import (
	"strings"
	"sync"
)

// The provider section of a page without a search is the same for every
// request of one language, view and static path while no provider's
// availability changes, except for each link's start URL, which carries
// the request's rd. For ten thousand providers writing it afresh costs
// tens of milliseconds and megabytes of garbage per page (issue 18), so
// it is written once with holes where the start URLs go, kept, and each
// request fills the holes with its own escaped URLs. The kept sections
// are few and bounded: one per (catalog, language, view, static path),
// replaced when an availability changes, all dropped past maxSections.

// maxSections bounds the kept sections: a handful of languages, two
// views, and the catalog of a reload before the old one is gone.
const maxSections = 16

type sectionKey struct {
	cat     *Catalog
	lang    *language
	compact bool
	static  string
}

// section is a provider section with holes: parts[k] comes before the
// start URL of provider holes[k]; parts has one more element, the end.
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
// d's section is not cached (a search).
func (d *TemplateData) cachedProviders() (string, bool) {
	if d.Query != "" || d.page == nil {
		return "", false
	}
	key := sectionKey{cat: d.cat, lang: d.lang, compact: d.Compact, static: d.req.Links.Static}
	c := &d.page.sections
	c.mu.Lock()
	s := c.m[key]
	c.mu.Unlock()
	if s == nil || !s.matches(d.statuses) {
		s = d.buildSection()
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxSections {
			c.m = make(map[sectionKey]*section)
		}
		c.m[key] = s
		c.mu.Unlock()
	}
	return s.fill(d), true
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

// buildSection writes d's section with holes for the start URLs.
func (d *TemplateData) buildSection() *section {
	s := &section{available: make([]bool, len(d.statuses))}
	for k, st := range d.statuses {
		s.available[k] = st.Available
	}
	var b strings.Builder
	b.Grow(256 * len(d.visible))
	d.hole = func(id string) {
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

// fill writes s with d's start URLs in its holes.
func (s *section) fill(d *TemplateData) string {
	var b strings.Builder
	b.Grow(s.size + len(s.holes)*(len(d.req.Links.Start(""))+24))
	for k, id := range s.holes {
		b.WriteString(s.parts[k])
		b.WriteString(safeURL(d.req.Links.Start(id)))
	}
	b.WriteString(s.parts[len(s.parts)-1])
	return b.String()
}
