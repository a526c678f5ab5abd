package selection

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./selection -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered page; run go test ./selection -update and review the diff.\ngot:\n%s", path, got)
	}
}

// testLinks are the URLs the broker would make for rd=/app at the root.
func testLinks(rd string) Links {
	return Links{
		SignIn: "/oauth2/sign_in",
		Static: "/oauth2/static/",
		Start:  func(id string) string { return "/oauth2/start/" + id + "?rd=" + rd },
	}
}

func mustPage(t testing.TB, cfg Config) *Page {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustCatalog(t testing.TB, ps []Provider) *Catalog {
	t.Helper()
	c, err := NewCatalog(ps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func render(t testing.TB, p *Page, c *Catalog, req Request) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Render(&buf, c, req); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func downStatus(ids ...string) func(string) Status {
	return func(id string) Status {
		for _, d := range ids {
			if d == id {
				return Status{Reason: "unreachable, retrying shortly"}
			}
		}
		return Status{Available: true}
	}
}

// tenants returns n providers in groups of ten.
func tenants(n int, icon string) []Provider {
	ps := make([]Provider, n)
	for i := range ps {
		ps[i] = Provider{ID: fmt.Sprintf("tenant-%04d", i), Name: fmt.Sprintf("Tenant %d GmbH", i),
			Group: fmt.Sprintf("Region %d", i%10), Domains: []string{fmt.Sprintf("tenant%d.example", i)}}
		if i%3 == 0 {
			ps[i].Icon = icon
		}
	}
	return ps
}

func TestRenderGolden(t *testing.T) {
	three := []Provider{
		{ID: "google", Name: "Google", Icon: "testdata/icon.svg"},
		{ID: "kc", Name: `Keycloak <"corp">`},
		{ID: "okta", Name: "Okta"},
	}
	realms := []Provider{
		{ID: "corp", Name: "Corp SSO", Domains: []string{"corp.example", ".eu.corp.example"}},
		{ID: "github", Name: "GitHub"},
	}
	list := []Provider{
		{ID: "acme", Name: "Acme", Group: "Customers"}, {ID: "globex", Name: "Globex", Group: "Customers"},
		{ID: "staff", Name: "Staff SSO", Icon: "testdata/icon.svg"}, {ID: "initech", Name: "Initech", Group: "Customers"},
		{ID: "umbrella", Name: "Umbrella", Group: "Partners"},
	}
	branded := Config{Title: "Example Intranet", Logo: "testdata/logo.svg", ListThreshold: 3,
		Colors:      Colors{Primary: "#7a1fa2", Background: "#fafafa", Text: "#222"},
		FooterLinks: []Link{{Text: "Privacy", URL: "https://example.com/privacy"}, {Text: "Help", URL: "/help"}}}
	for _, tt := range []struct {
		name string
		cfg  Config
		ps   []Provider
		req  Request
	}{
		{"buttons", Config{Title: "Sign in to Example"}, three,
			Request{Status: downStatus("okta")}},
		{"last-used", Config{}, three,
			Request{LastUsed: "google"}},
		{"realm-unknown-domain", Config{}, realms,
			Request{Login: "bob@elsewhere.example", Notice: Notice{Kind: UnknownDomain, Value: "elsewhere.example"}}},
		{"list-de", branded, list,
			Request{AcceptLanguage: "de-CH, de;q=0.9, en;q=0.5", LastUsed: "staff", Status: downStatus("globex")}},
		{"list-search", branded, list,
			Request{Query: "  GLOB "}},
		{"list-search-none", Config{ListThreshold: 1}, list,
			Request{Query: "zzz"}},
		{"empty", Config{}, nil, Request{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Links, req.RD = testLinks("%2Fapp"), "/app"
			golden(t, "select-"+tt.name+".golden.html", []byte(render(t, mustPage(t, tt.cfg), mustCatalog(t, tt.ps), req)))
		})
	}
}

func TestRenderEscapesAndDisables(t *testing.T) {
	p := mustPage(t, Config{})
	c := mustCatalog(t, []Provider{{ID: "x", Name: "<script>alert(1)</script>"}, {ID: "down", Name: "Down"}})
	links := testLinks("")
	links.Start = func(id string) string {
		if id == "x" {
			return "javascript:alert(1)"
		}
		return "/oauth2/start/" + id
	}
	html := render(t, p, c, Request{Links: links, Status: downStatus("down"), Query: "", Login: `"><script>`,
		Notice: Notice{Kind: UnknownProvider, Value: "<img src=x onerror=alert(1)>"}})
	for _, bad := range []string{"<script>alert", `href="javascript:`, `href="/oauth2/start/down"`, "<img src=x"} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{`<html lang="en">`, `<title>Sign in</title>`, `aria-disabled="true">Sign in with Down`,
		`<span class="reason">Unavailable</span>`, "&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestLastUsedOnlyWhenKnownAndAvailable(t *testing.T) {
	p := mustPage(t, Config{})
	c := mustCatalog(t, []Provider{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}})
	for _, tt := range []struct {
		lastUsed string
		want     bool
	}{{"a", true}, {"b", false}, {"nope", false}, {"", false}} {
		html := render(t, p, c, Request{Links: testLinks("%2F"), LastUsed: tt.lastUsed, Status: downStatus("b")})
		if got := strings.Contains(html, `id="continue-last"`); got != tt.want {
			t.Errorf("last used %q: continue button shown %v, want %v", tt.lastUsed, got, tt.want)
		}
	}
}

func TestSearch(t *testing.T) {
	p := mustPage(t, Config{ListThreshold: 2})
	c := mustCatalog(t, []Provider{{ID: "acme-eu", Name: "Acme Europe"}, {ID: "acme-us", Name: "ACME Americas"},
		{ID: "globex", Name: "Globex"}, {ID: "xyz", Name: "Straße AG"}})
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"", []string{"acme-eu", "acme-us", "globex", "xyz"}},
		{"acme", []string{"acme-eu", "acme-us"}},
		{"AMERICAS", []string{"acme-us"}},
		{"-eu", []string{"acme-eu"}}, // ids are searched too
		{"STRASSE", nil},             // no case folding beyond lower-casing
		{"straße", []string{"xyz"}},
		{"e g", nil}, // name and id do not run together
		{"nothing", nil},
	} {
		html := render(t, p, c, Request{Links: testLinks("%2F"), Query: tt.q})
		var got []string
		for _, id := range []string{"acme-eu", "acme-us", "globex", "xyz"} {
			if strings.Contains(html, `id="idp-`+id+`"`) {
				got = append(got, id)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("q=%q shows %v, want %v", tt.q, got, tt.want)
		}
		if tt.q != "" && !strings.Contains(html, `value="`+strings.TrimSpace(tt.q)+`"`) {
			t.Errorf("q=%q not kept in the search field", tt.q)
		}
	}
}

func TestListThreshold(t *testing.T) {
	ps := tenants(9, "")
	for _, tt := range []struct {
		threshold, n int
		compact      bool
	}{{0, 8, false}, {0, 9, true}, {3, 3, false}, {3, 4, true}} {
		html := render(t, mustPage(t, Config{ListThreshold: tt.threshold}), mustCatalog(t, ps[:tt.n]), Request{Links: testLinks("%2F")})
		if got := strings.Contains(html, `id="q"`); got != tt.compact {
			t.Errorf("threshold %d, %d providers: search shown %v, want %v", tt.threshold, tt.n, got, tt.compact)
		}
		if got := strings.Contains(html, "select.js"); got != tt.compact {
			t.Errorf("threshold %d, %d providers: script included %v, want %v", tt.threshold, tt.n, got, tt.compact)
		}
	}
}

func TestGroupsInOrderOfFirstAppearance(t *testing.T) {
	p := mustPage(t, Config{ListThreshold: 1})
	c := mustCatalog(t, []Provider{{ID: "a", Group: "Zeta"}, {ID: "b"}, {ID: "c", Group: "Alpha"}, {ID: "d", Group: "Zeta"}})
	html := render(t, p, c, Request{Links: testLinks("%2F")})
	var order []string
	for _, s := range []string{">Zeta</h2>", `id="idp-a"`, `id="idp-d"`, ">Other</h2>", `id="idp-b"`, ">Alpha</h2>", `id="idp-c"`} {
		order = append(order, fmt.Sprint(strings.Index(html, s)))
		if !strings.Contains(html, s) {
			t.Fatalf("page lacks %s:\n%s", s, html)
		}
	}
	for i := 1; i < len(order); i++ {
		a, b := 0, 0
		fmt.Sscan(order[i-1], &a)
		fmt.Sscan(order[i], &b)
		if a > b {
			t.Fatalf("sections out of order at %d: %v", i, order)
		}
	}
}

func TestTemplateDir(t *testing.T) {
	p := mustPage(t, Config{TemplateDir: "testdata/theme"})
	html := render(t, p, mustCatalog(t, []Provider{{ID: "a"}}), Request{Links: testLinks("%2F")})
	if !strings.Contains(html, `<footer class="custom">Operated by Example IT</footer>`) || !strings.Contains(html, `id="idp-a"`) {
		t.Errorf("the footer block was not replaced:\n%s", html)
	}

	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("select.html", `<!doctype html><html lang="{{.Lang}}"><title>{{.Title}}</title>{{range .Options}}<a href="{{.StartURL}}">{{.Name}}</a>{{end}}`)
	p = mustPage(t, Config{TemplateDir: dir})
	html = render(t, p, mustCatalog(t, []Provider{{ID: "a", Name: "A"}}), Request{Links: testLinks("%2F")})
	if want := `<!doctype html><html lang="en"><title>Sign in</title><a href="/oauth2/start/a?rd=%2F">A</a>`; html != want {
		t.Errorf("custom page:\n%s\nwant\n%s", html, want)
	}

	for name, text := range map[string]string{
		"syntax":       `{{if}}`,
		"unknown data": `{{.NoSuchField}}`,
	} {
		write("select.html", text)
		if _, err := New(Config{TemplateDir: dir}); err == nil || !strings.Contains(err.Error(), "template_dir:") {
			t.Errorf("%s: New = %v, want a template_dir error", name, err)
		}
	}
	if _, err := New(Config{TemplateDir: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing template_dir was accepted")
	}
}
