package selection

import (
	"fmt"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	c := mustCatalog(t, []Provider{
		{ID: "corp", Domains: []string{"Example.com", ".corp.example.com"}},
		{ID: "eu", Domains: []string{".eu.corp.example.com"}},
		{ID: "lab", Domains: []string{"lab.corp.example.com"}},
		{ID: "plain"},
	})
	for _, tt := range []struct {
		login, id, domain string
		ok                bool
	}{
		{"alice@example.com", "corp", "example.com", true},
		{"  ALICE@EXAMPLE.COM ", "corp", "example.com", true},
		{"alice@sub.example.com", "", "sub.example.com", false}, // exact claim: no subdomains
		{"bob@corp.example.com", "corp", "corp.example.com", true},
		{"bob@x.corp.example.com", "corp", "x.corp.example.com", true},
		{"bob@eu.corp.example.com", "eu", "eu.corp.example.com", true}, // the longest suffix wins
		{"bob@paris.eu.corp.example.com", "eu", "paris.eu.corp.example.com", true},
		{"carol@lab.corp.example.com", "lab", "lab.corp.example.com", true}, // exact beats suffix
		{"dave@elsewhere.example", "", "elsewhere.example", false},
		{"user@name@example.com", "corp", "example.com", true}, // the last @ separates the domain
		{"alice", "", "", false},
		{"alice@", "", "", false},
		{"@example.com", "", "", false},
		{"", "", "", false},
		{"a@" + strings.Repeat("x", maxLoginLength), "", "", false},
	} {
		id, domain, ok := c.Discover(tt.login)
		if id != tt.id || domain != tt.domain || ok != tt.ok {
			t.Errorf("Discover(%q) = %q, %q, %v; want %q, %q, %v", tt.login, id, domain, ok, tt.id, tt.domain, tt.ok)
		}
	}
}

func TestCheckProviders(t *testing.T) {
	for _, tt := range []struct {
		name string
		ps   []Provider
		want []string // substrings of the error, in order; nil for none
	}{
		{"fine", []Provider{{ID: "a", Domains: []string{"a.example", ".b.example", "xn--bcher-kva.example"}}, {ID: "b", Icon: "testdata/icon.svg"}}, nil},
		{"conflict names both", []Provider{{ID: "okta", Domains: []string{"example.com"}}, {ID: "entra", Domains: []string{"EXAMPLE.com"}}},
			[]string{`[1].domains[0]: "EXAMPLE.com" is also claimed by provider "okta"`}},
		{"same suffix twice", []Provider{{ID: "a", Domains: []string{".example.com"}}, {ID: "b", Domains: []string{".example.com"}}},
			[]string{`[1].domains[0]: ".example.com" is also claimed by provider "a"`}},
		{"exact and suffix are different claims", []Provider{{ID: "a", Domains: []string{"example.com"}}, {ID: "b", Domains: []string{".example.com"}}}, nil},
		{"listed twice", []Provider{{ID: "a", Domains: []string{"a.example", "a.example"}}}, []string{`[0].domains[1]: "a.example" is listed twice`}},
		{"bad domains", []Provider{{ID: "a", Domains: []string{"", "-a.example", "a_b.example", "bücher.de", "1.2.3.4", "a..b", "..", "http://x.example", strings.Repeat("a", 64) + ".example"}}},
			[]string{"[0].domains[0]", "[0].domains[1]", "[0].domains[2]", "[0].domains[3]: \"bücher.de\" is not a DNS name (use ASCII", "[0].domains[4]: \"1.2.3.4\" is an IP address",
				"[0].domains[5]", "[0].domains[6]", "[0].domains[7]", "[0].domains[8]"}},
		{"icon URL", []Provider{{ID: "a", Icon: "https://cdn.example/a.png"}}, []string{`[0].icon: "https://cdn.example/a.png" is a URL`}},
		{"icon missing", []Provider{{ID: "a", Icon: "testdata/missing.png"}}, []string{"[0].icon: cannot read the image"}},
		{"icon not an image", []Provider{{ID: "a", Icon: "testdata/theme/footer.html"}}, []string{"[0].icon: testdata/theme/footer.html is not a PNG, SVG, ICO or WebP image"}},
		{"group too long", []Provider{{ID: "a", Group: strings.Repeat("g", 101)}}, []string{"[0].group: is longer than 100 bytes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckProviders(tt.ps)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(lines), len(tt.want), msg)
			}
			for i, w := range tt.want {
				if i < len(lines) && !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
			if _, err := NewCatalog(tt.ps); err == nil {
				t.Error("NewCatalog accepted what CheckProviders refused")
			}
		})
	}
}

func TestNewCatalogIDs(t *testing.T) {
	_, err := NewCatalog([]Provider{{ID: ""}, {ID: "a"}, {ID: "a", Domains: []string{"-"}}})
	for _, want := range []string{"[0].id: is required", `[2].id: "a" is used twice`, "[2].domains[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewCatalog: %v, want %q", err, want)
		}
	}
}

func TestCatalogIcon(t *testing.T) {
	c := mustCatalog(t, []Provider{{ID: "a", Icon: "testdata/icon.svg"}, {ID: "b"}})
	p := mustPage(t, Config{Logo: "testdata/logo.svg"})
	for name, want := range map[string]string{"icons/a": "image/svg+xml", "logo": "image/svg+xml", "select.js": "text/javascript; charset=utf-8",
		"icons/b": "", "icons/": "", "icons/zz": "", "other": "", "": ""} {
		a, ok := p.Asset(c, name)
		if ok != (want != "") || a.ContentType != want {
			t.Errorf("Asset(%q) = %q, %v; want %q", name, a.ContentType, ok, want)
		}
	}
	if _, ok := mustPage(t, Config{}).Asset(c, "logo"); ok {
		t.Error("a logo without selection.logo")
	}
}

func ExampleCatalog_Discover() {
	c, err := NewCatalog([]Provider{
		{ID: "google", Name: "Google"},
		{ID: "acme", Name: "Acme", Domains: []string{"acme.example", ".acme-group.example"}},
	})
	if err != nil {
		panic(err)
	}
	for _, login := range []string{"alice@ACME.example", "bob@lab.acme-group.example", "carol@elsewhere.example", "dave"} {
		id, domain, ok := c.Discover(login)
		fmt.Printf("%s: %q %q %v\n", login, id, domain, ok)
	}
	// Output:
	// alice@ACME.example: "acme" "acme.example" true
	// bob@lab.acme-group.example: "acme" "lab.acme-group.example" true
	// carol@elsewhere.example: "" "elsewhere.example" false
	// dave: "" "" false
}
