package selection

import (
	"io"
	"testing"
)

// BenchmarkRender1000Providers renders the page of a thousand providers in
// ten groups, a third with icons: the compact list, whole and searched
// (discovery_threshold set above them).
func BenchmarkRender1000Providers(b *testing.B) {
	p := mustPage(b, Config{Title: "Sign in to Example", Logo: "testdata/logo.svg", DiscoveryThreshold: 1000})
	c := mustCatalog(b, tenants(1000, "testdata/icon.svg"))
	for _, bb := range []struct {
		name string
		req  Request
	}{
		{"all", Request{Links: testLinks("%2Fapp"), RD: "/app", AcceptLanguage: "de-DE,de;q=0.9", LastUsed: "tenant-0042"}},
		{"search", Request{Links: testLinks("%2Fapp"), RD: "/app", Query: "tenant 4"}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Render(io.Discard, c, bb.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderTemplateOnly1000Providers is the same page rendered by a
// template that ranges over .Options, as a custom template would: the cost
// the fast writer avoids.
func BenchmarkRenderTemplateOnly1000Providers(b *testing.B) {
	p := mustPage(b, Config{DiscoveryThreshold: 1000})
	c := mustCatalog(b, tenants(1000, "testdata/icon.svg"))
	req := Request{Links: testLinks("%2Fapp"), RD: "/app"}
	b.ReportAllocs()
	for b.Loop() {
		d := p.data(c, &req)
		if err := referenceMarkup.Execute(io.Discard, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender10000Providers renders the whole compact list of ten
// thousand providers (issue 18: the sign-in page at that size;
// discovery_threshold set above them), with the per-request parts (rd, a
// status function) the broker gives.
func BenchmarkRender10000Providers(b *testing.B) {
	p := mustPage(b, Config{Title: "Sign in to Example", Logo: "testdata/logo.svg", DiscoveryThreshold: 10000})
	c := mustCatalog(b, tenants(10000, "testdata/icon.svg"))
	links := Links{SignIn: "/oauth2/sign_in", Static: "/oauth2/static/", StartBase: "/oauth2/start/", StartQuery: "?rd=%2Fapp"}
	req := Request{Links: links, RD: "/app", AcceptLanguage: "de-DE,de;q=0.9", LastUsed: "tenant-0042",
		Status: func(id string) Status { return Status{Available: id != "tenant-0007"} }}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Render(io.Discard, c, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderDiscovery10000Providers renders the page of ten thousand
// providers in its default view, the discovery view: without a search
// (five featured providers), and with searches that match one, 1,111 and
// all of them.
func BenchmarkRenderDiscovery10000Providers(b *testing.B) {
	p := mustPage(b, Config{Title: "Sign in to Example", Logo: "testdata/logo.svg",
		Featured: []string{"tenant-0001", "tenant-0002", "tenant-0003", "tenant-0004", "tenant-0005"}})
	c := mustCatalog(b, tenants(10000, "testdata/icon.svg"))
	links := Links{SignIn: "/oauth2/sign_in", Static: "/oauth2/static/", StartBase: "/oauth2/start/", StartQuery: "?rd=%2Fapp"}
	status := func(id string) Status { return Status{Available: id != "tenant-0007"} }
	for _, bb := range []struct{ name, query string }{{"featured", ""}, {"search-one", "tenant 4242"}, {"search-1111", "tenant 4"}, {"search-all", "tenant"}} {
		b.Run(bb.name, func(b *testing.B) {
			req := Request{Links: links, RD: "/app", AcceptLanguage: "de-DE,de;q=0.9", LastUsed: "tenant-0042", Status: status, Query: bb.query}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Render(io.Discard, c, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
