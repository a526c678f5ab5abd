package selection

import (
	"net/url"
	"strconv"
	"strings"
)

// The discovery view: above Config.DiscoveryThreshold providers (issue 18:
// ten thousand tenants) a page listing them all is a megabyte of buttons
// nobody reads, and costs the broker milliseconds and megabytes per
// request. The page then lists no provider it was not asked for: it
// offers home-realm discovery (the email field, when providers claim
// domains), the search form, the one this browser used last, and
//
//   - without a search, the Featured providers;
//   - with one, at most MaxSearchResults matches, the best first (the
//     name or id equal to the query, then starting with it, then a word
//     of it starting with it, then containing it; configuration order
//     within each), and how many match in all.
//
// A request's work is then bounded by the providers shown and one pass
// over the search keys, whatever the catalog's size.

// discover fills in d's providers for the discovery view.
func (p *Page) discover(c *Catalog, d *TemplateData, query string) {
	msgs := d.lang.msgs
	total := strconv.Itoa(c.Len())
	if query == "" {
		d.DiscoveryHelp = msgs.Format("discovery_help", "total", total)
		for _, id := range p.cfg.Featured {
			if i, ok := c.byID[id]; ok {
				d.visible = append(d.visible, i)
			}
		}
		d.Featured = len(d.visible) > 0
		return
	}
	var matches int
	d.visible, matches = c.search(strings.ToLower(query), MaxSearchResults)
	d.Query, d.Matches = query, matches
	d.ClearSearchURL = clearSearchURL(d)
	switch {
	case matches == 0:
		d.SearchResult = msgs.Format("search_none", "query", query)
	case matches > len(d.visible):
		d.SearchResult = msgs.Format("search_more", "count", strconv.Itoa(len(d.visible)), "matches", strconv.Itoa(matches), "query", query)
	default:
		d.SearchResult = msgs.Format("search_count", "count", strconv.Itoa(matches), "total", total, "query", query)
	}
}

// search returns the first limit entries whose name or id contains q
// (lower-case), best first, and how many match in all.
func (c *Catalog) search(q string, limit int) ([]int, int) {
	var ranks [4][]int // by rank: equal, prefix, word prefix, inside
	n := 0
	for i := range c.entries {
		r := matchRank(c.entries[i].key, q)
		if r < 0 {
			continue
		}
		n++
		if len(ranks[r]) < limit {
			ranks[r] = append(ranks[r], i)
		}
	}
	out := make([]int, 0, min(n, limit))
	for _, r := range ranks {
		out = append(out, r[:min(len(r), limit-len(out))]...)
	}
	return out, n
}

// matchRank ranks how key (lower-case name NUL id) matches q: 0 when the
// name or the id is q, 1 when one starts with q, 2 when a word in them
// does, 3 when q is inside one; -1 when it does not match.
func matchRank(key, q string) int {
	at := strings.Index(key, q)
	if at < 0 {
		return -1
	}
	name, id, _ := strings.Cut(key, "\x00")
	switch {
	case name == q || id == q:
		return 0
	case strings.HasPrefix(name, q) || strings.HasPrefix(id, q):
		return 1
	}
	for ; at >= 0; at = nextIndex(key, q, at) {
		if at == 0 || !isWordByte(key[at-1]) {
			return 2
		}
	}
	return 3
}

// nextIndex is the index of q in key after the one at, or -1.
func nextIndex(key, q string, at int) int {
	if i := strings.Index(key[at+1:], q); i >= 0 {
		return at + 1 + i
	}
	return -1
}

// isWordByte: ASCII letters and digits, and every byte of a multi-byte
// UTF-8 character (so a word may start after an accented letter only
// where a separator is).
func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b >= 0x80
}

// clearSearchURL is the page again without the search.
func clearSearchURL(d *TemplateData) string {
	u := d.req.Links.SignIn + "?rd=" + url.QueryEscape(d.req.RD)
	if d.Remember {
		u += "&remember=1"
	}
	return u
}
