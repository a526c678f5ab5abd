package selection

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// freshProviders writes d's provider section without the cache.
func freshProviders(d *TemplateData) string {
	var b strings.Builder
	d.writeProviders(&b)
	return b.String()
}

// TestCachedSectionMatchesFresh renders the provider section through the
// cache and afresh, over languages, both views, changing availabilities
// and rd values that need escaping, and requires the same bytes: each
// request's own start URLs, and the markup of the current availability.
func TestCachedSectionMatchesFresh(t *testing.T) {
	p := mustPage(t, Config{})
	ps := append(tenants(60, "testdata/icon.svg"), Provider{ID: `a b/&"x'<`, Name: "Tricky"}, Provider{ID: "ü\\", Name: "Ü"})
	c := mustCatalog(t, ps)
	down := map[string]bool{}
	status := func(id string) Status {
		if down[id] {
			return Status{Reason: "down"}
		}
		return Status{Available: true}
	}
	rds := []string{"/app", `/a?x="<b>"&y='1'`, "/ü/日本"}
	steps := []func(){
		func() {},
		func() { down["tenant-0003"] = true },
		func() { down["tenant-0003"] = false; down["tenant-0059"] = true },
		func() { clear(down) },
	}
	for si, step := range steps {
		step()
		for _, lang := range []string{"en", "de-DE,de;q=0.9", "fr", "xx"} {
			for _, compact := range []bool{false, true} {
				for _, links := range linkVariants(rds) {
					req := Request{Links: links, AcceptLanguage: lang, Status: status}
					for range 2 { // the first may build the section, the second uses it
						d := p.data(c, &req)
						d.Compact = compact
						got, want := string(d.Providers()), freshProviders(d)
						if got != want {
							t.Fatalf("step %d lang %q compact %v links %+v: cached section differs:\n%s\nwant\n%s", si, lang, compact, links, got, want)
						}
					}
				}
			}
		}
	}
	if n := len(p.sections.m); n == 0 || n > maxSections {
		t.Errorf("%d sections kept, want 1..%d", n, maxSections)
	}
}

// linkVariants gives for each rd the links as a Start function and as
// StartBase and StartQuery, and links that safeURL refuses.
func linkVariants(rds []string) []Links {
	var ls []Links
	for _, rd := range rds {
		q := "?rd=" + url.QueryEscape(rd)
		ls = append(ls, testLinks(url.QueryEscape(rd)),
			Links{SignIn: "/oauth2/sign_in", Static: "/oauth2/static/", StartBase: "/oauth2/start/", StartQuery: q},
			Links{SignIn: "/oauth2/sign_in", Static: "/s/", StartBase: "/p/oauth2/start/", StartQuery: q + "&remember=1"})
	}
	return append(ls,
		Links{Static: "/s/", StartBase: "//evil.example/", StartQuery: "?rd=%2F"},
		Links{Static: "/s/", StartBase: "/", StartQuery: "/x"},
		Links{Static: "/s/", StartBase: "/start/", StartQuery: "?rd=\\x"},
		Links{Static: "/s/", StartBase: "/start/", StartQuery: "?rd=\x01"})
}

// TestCachedPageMatchesFresh compares whole pages, rendered twice (the
// second from the cache), with a page whose cache is new, for the broker's
// kind of request: a status change between the two shows at once.
func TestCachedPageMatchesFresh(t *testing.T) {
	c := mustCatalog(t, tenants(300, ""))
	all := Config{DiscoveryThreshold: 1000} // the whole list, which is what is cached
	cached := mustPage(t, all)
	avail := true
	req := func(rd string) Request {
		return Request{Links: testLinks(url.QueryEscape(rd)), RD: rd, AcceptLanguage: "de", LastUsed: "tenant-0001", OfferRemember: true,
			Status: func(id string) Status { return Status{Available: avail || id != "tenant-0002"} }}
	}
	for i, rd := range []string{"/one", "/two?a=1&b=<2>", "/one"} {
		if i == 2 {
			avail = false
		}
		var got bytes.Buffer
		if err := cached.Render(&got, c, req(rd)); err != nil {
			t.Fatal(err)
		}
		want := render(t, mustPage(t, all), c, req(rd))
		if got.String() != want {
			t.Fatalf("render %d (rd %q): cached page differs from a fresh one", i, rd)
		}
		if esc := url.QueryEscape(rd); !strings.Contains(want, fmt.Sprintf("/oauth2/start/tenant-0299?rd=%s\"", strings.ReplaceAll(esc, "&", "&amp;"))) {
			t.Fatalf("render %d: the start URL of the last provider does not carry rd %q", i, rd)
		}
	}
}

// TestSectionCacheKeepsWhatItHasWhenFull: once maxSections sections are
// kept, a request whose key is new (a client varying the Host of a broker
// without public_url) is served a section built for it alone; the kept
// sections stay, so the other pages keep being served from the cache.
func TestSectionCacheKeepsWhatItHasWhenFull(t *testing.T) {
	p := mustPage(t, Config{})
	c := mustCatalog(t, tenants(20, ""))
	status := func(string) Status { return Status{Available: true} }
	render := func(base string) {
		req := Request{Links: Links{SignIn: "/oauth2/sign_in", Static: "/oauth2/static/", StartBase: base, StartQuery: "?rd=%2F"}, Status: status}
		d := p.data(c, &req)
		if got, want := string(d.Providers()), freshProviders(d); got != want {
			t.Fatalf("base %s: cached section differs", base)
		}
	}
	for i := range maxSections {
		render(fmt.Sprintf("/h%d/oauth2/start/", i))
	}
	first := p.sections.m
	kept := make([]*section, 0, len(first))
	for _, s := range first {
		kept = append(kept, s)
	}
	for i := range 3 * maxSections {
		render(fmt.Sprintf("/other%d/oauth2/start/", i))
	}
	if len(p.sections.m) != maxSections {
		t.Fatalf("%d sections kept, want %d", len(p.sections.m), maxSections)
	}
	for _, s := range kept {
		found := false
		for _, t := range p.sections.m {
			found = found || t == s
		}
		if !found {
			t.Fatal("a kept section was dropped for a request's new key")
		}
	}
}
