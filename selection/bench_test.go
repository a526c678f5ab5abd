package selection

import (
	"io"
	"testing"
)

// BenchmarkRender1000Providers renders the page of a thousand providers in
// ten groups, a third with icons: the compact list, whole and searched.
func BenchmarkRender1000Providers(b *testing.B) {
	p := mustPage(b, Config{Title: "Sign in to Example", Logo: "testdata/logo.svg"})
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
	p := mustPage(b, Config{})
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
// thousand providers (issue 18: the sign-in page at that size), with the
// per-request parts (rd, a status function) the broker gives.
func BenchmarkRender10000Providers(b *testing.B) {
	p := mustPage(b, Config{Title: "Sign in to Example", Logo: "testdata/logo.svg"})
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
