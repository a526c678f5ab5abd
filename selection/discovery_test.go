package selection

import (
	"regexp"
	"strings"
	"testing"
)

var rowRE = regexp.MustCompile(`<li><(?:a|span) class="(?:row|idp)" id="idp-([^"]+)"`)

// rows returns the ids of the providers listed, in order.
func rows(html string) []string {
	var ids []string
	for _, m := range rowRE.FindAllStringSubmatch(html, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestDiscoveryThreshold(t *testing.T) {
	ps := tenants(150, "")
	for _, tt := range []struct {
		cfg       Config
		n         int
		discovery bool
	}{
		{Config{}, 100, false}, // the default: 100
		{Config{}, 101, true},
		{Config{ListThreshold: 120}, 120, false}, // the default follows a higher list_threshold
		{Config{ListThreshold: 120}, 121, true},
		{Config{DiscoveryThreshold: 8}, 8, false}, // as low as list_threshold
		{Config{DiscoveryThreshold: 8}, 9, true},
		{Config{DiscoveryThreshold: 10_000}, 150, false},
	} {
		html := render(t, mustPage(t, tt.cfg), mustCatalog(t, ps[:tt.n]), Request{Links: testLinks("%2F")})
		got := len(rows(html))
		if tt.discovery {
			if got != 0 || !strings.Contains(html, `aria-describedby="q-help"`) || !strings.Contains(html, `id="login"`) {
				t.Errorf("%+v, %d providers: %d listed, want the discovery view (none listed, the search with its help, the email field)", tt.cfg, tt.n, got)
			}
			if strings.Contains(html, "select.js") {
				t.Errorf("%+v, %d providers: the live filter's script is included in the discovery view", tt.cfg, tt.n)
			}
		} else if got != tt.n || strings.Contains(html, "q-help") {
			t.Errorf("%+v, %d providers: %d listed, want all", tt.cfg, tt.n, got)
		}
	}
}

func TestDiscoverySearchRanksAndBounds(t *testing.T) {
	p := mustPage(t, Config{ListThreshold: 3, DiscoveryThreshold: 3})
	c := mustCatalog(t, []Provider{{ID: "a", Name: "Big Acme Holdings"}, {ID: "d", Name: "Nacme"}, {ID: "b", Name: "Acmeville"},
		{ID: "c", Name: "Acme"}, {ID: "acme-x", Name: "X"}, {ID: "e", Name: "Other"}})
	for _, tt := range []struct{ q, want string }{
		// the name equal, then the name or id starting with it, then a
		// word, then anywhere; configuration order within each
		{"ACME", "c,b,acme-x,a,d"},
		{"acme ", "c,b,acme-x,a,d"}, // trimmed
		{"holdings", "a"},
		{"x", "acme-x"},
		{"zzz", ""},
	} {
		html := render(t, p, c, Request{Links: testLinks("%2F"), Query: tt.q})
		if got := strings.Join(rows(html), ","); got != tt.want {
			t.Errorf("q=%q lists %s, want %s", tt.q, got, tt.want)
		}
	}

	big := mustCatalog(t, tenants(1000, ""))
	html := render(t, mustPage(t, Config{}), big, Request{Links: testLinks("%2F"), Query: "gmbh"})
	if got := rows(html); len(got) != MaxSearchResults || got[0] != "tenant-0000" || got[MaxSearchResults-1] != "tenant-0049" {
		t.Errorf("q=gmbh of 1000: lists %d (%v…), want the first %d", len(got), got[:min(3, len(got))], MaxSearchResults)
	}
	if want := `Showing the first 50 of 1000 matches for “gmbh”. Type more of the name to narrow them down. <a href="/oauth2/sign_in?rd=">New search</a>`; !strings.Contains(html, want) {
		t.Errorf("q=gmbh: the page does not say %q", want)
	}
	html = render(t, mustPage(t, Config{}), big, Request{Links: testLinks("%2F"), Query: "Tenant 42 GmbH"})
	if got := rows(html); len(got) != 1 || got[0] != "tenant-0042" || !strings.Contains(html, "Showing 1 of 1000 for “Tenant 42 GmbH”.") {
		t.Errorf("q=Tenant 42 GmbH lists %v", got)
	}
	de := render(t, mustPage(t, Config{}), big, Request{Links: testLinks("%2F"), Query: "tenant 4", AcceptLanguage: "de"})
	if want := "Die ersten 50 von 111 Treffern für „tenant 4“."; !strings.Contains(de, want) {
		t.Errorf("German: the page does not say %q", want)
	}
}

func TestDiscoveryEscapesTheQuery(t *testing.T) {
	p := mustPage(t, Config{DiscoveryThreshold: 1, ListThreshold: 1})
	c := mustCatalog(t, []Provider{{ID: "a", Name: `<b>"A&B"</b>`}, {ID: "b"}})
	for _, q := range []string{`<b>"a&b"`, `"><script>alert(1)</script>`} {
		html := render(t, p, c, Request{Links: testLinks("%2F"), Query: q})
		for _, raw := range []string{"<script>", `<b>"`, `value="<`} {
			if strings.Contains(html, raw) {
				t.Errorf("q=%q: the page contains %q unescaped", q, raw)
			}
		}
	}
	html := render(t, p, c, Request{Links: testLinks("%2F"), Query: `<b>"a&b"`})
	if got := rows(html); len(got) != 1 || got[0] != "a" || !strings.Contains(html, `&lt;b&gt;&#34;A&amp;B&#34;&lt;/b&gt;`) {
		t.Errorf("the match is not listed, escaped: %v\n%s", got, html)
	}
	long := strings.Repeat("x", 500)
	html = render(t, p, c, Request{Links: testLinks("%2F"), Query: long})
	if strings.Contains(html, strings.Repeat("x", maxEcho+1)) {
		t.Errorf("a %d-byte query is echoed beyond %d bytes", len(long), maxEcho)
	}
}

func TestDiscoveryFeatured(t *testing.T) {
	c := mustCatalog(t, tenants(1000, ""))
	p := mustPage(t, Config{Featured: []string{"tenant-0500", "missing", "tenant-0003"}})
	html := render(t, p, c, Request{Links: testLinks("%2F"), LastUsed: "tenant-0900", Status: downStatus("tenant-0003")})
	if got := strings.Join(rows(html), ","); got != "tenant-0500,tenant-0003" {
		t.Errorf("featured: lists %s, want tenant-0500,tenant-0003 (an unknown id skipped)", got)
	}
	for _, want := range []string{
		`<h2 id="found-label">Frequently used</h2>`,
		`<span class="row" id="idp-tenant-0003" role="link" aria-disabled="true">`, // down: shown disabled
		`id="continue-last" href="/oauth2/start/tenant-0900?rd=%2F"`,               // the last used, besides
		"There are 1000 sign-in options",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("featured page lacks %s", want)
		}
	}
	de := render(t, p, c, Request{Links: testLinks("%2F"), AcceptLanguage: "de"})
	for _, want := range []string{">Häufig verwendet</h2>", "Es gibt 1000 Anmeldeoptionen"} {
		if !strings.Contains(de, want) {
			t.Errorf("German featured page lacks %s", want)
		}
	}
	// A search replaces them.
	if got := rows(render(t, p, c, Request{Links: testLinks("%2F"), Query: "tenant 77 "})); len(got) != 11 || got[0] != "tenant-0077" {
		t.Errorf("search: %v", got)
	}
	// The smaller views ignore them.
	small := render(t, p, mustCatalog(t, tenants(20, "")), Request{Links: testLinks("%2F")})
	if len(rows(small)) != 20 || strings.Contains(small, "Frequently used") {
		t.Error("a list of 20 changed with featured set")
	}
}

func TestDiscoveryDomainsStillLead(t *testing.T) {
	c := mustCatalog(t, tenants(1000, ""))
	if id, _, ok := c.Discover("jane@Tenant777.example"); !ok || id != "tenant-0777" {
		t.Errorf("Discover = %q, %v", id, ok)
	}
	html := render(t, mustPage(t, Config{}), c, Request{Links: testLinks("%2F"), Login: "jane@nowhere.example",
		Notice: Notice{Kind: UnknownDomain, Value: "nowhere.example"}})
	for _, want := range []string{`id="login" name="login" type="text" value="jane@nowhere.example"`, "No sign-in option is set up for “nowhere.example”"} {
		if !strings.Contains(html, want) {
			t.Errorf("discovery view lacks %s", want)
		}
	}
}

func TestDiscoveryConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{DiscoveryThreshold: 8}, ""},
		{Config{ListThreshold: 500}, ""}, // the default follows it
		{Config{DiscoveryThreshold: -1}, "discovery_threshold: must not be negative"},
		{Config{DiscoveryThreshold: 5}, "discovery_threshold: is 5, below list_threshold (8)"},
		{Config{ListThreshold: 50, DiscoveryThreshold: 40}, "discovery_threshold: is 40, below list_threshold (50)"},
		{Config{Featured: []string{"a", "", "a"}}, `featured[1]: is empty`},
		{Config{Featured: []string{"a", "", "a"}}, `featured[2]: "a" is listed twice`},
		{Config{Featured: make21()}, "featured: names 21 providers; at most 20"},
	} {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func make21() []string {
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = string(rune('a' + i))
	}
	return ids
}
