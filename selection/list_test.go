package selection

import (
	"bytes"
	"html"
	"html/template"
	"strings"
	"testing"
)

// referenceMarkup is the provider section written as a template, from
// TemplateData's Options and Groups: what the fast writer in list.go must
// produce. (docs/selection.md shows it to authors of custom templates.)
var referenceMarkup = template.Must(template.New("ref").Funcs(template.FuncMap{"args": func(v ...any) []any { return v }}).Parse(
	`{{define "item"}}{{$d := index . 0}}{{$o := index . 1}}{{$class := index . 2}}` +
		`{{if $o.Available}}<a class="{{$class}}" id="idp-{{$o.ID}}" href="{{$o.StartURL}}">` +
		`{{else}}<span class="{{$class}}" id="idp-{{$o.ID}}" role="link" aria-disabled="true">{{end}}` +
		`{{with $o.IconURL}}<img class="icon" src="{{.}}" alt="" width="20" height="20">{{end}}` +
		`{{if eq $class "idp"}}{{$d.T.Format "sign_in_with" "provider" $o.Name}}{{else}}<span class="n">{{$o.Name}}</span>{{end}}` +
		`{{if $o.Available}}</a>{{else}}<span class="reason">{{$d.T.provider_unavailable}}</span></span>{{end}}{{end}}` +
		`{{$d := .}}{{if .Compact}}{{if .Options}}<nav class="idps list" id="providers" aria-label="{{.T.providers_label}}">` + "\n" +
		`{{range $i, $g := .Groups}}{{with $g.Name}}<section aria-labelledby="group-{{$i}}"><h2 id="group-{{$i}}">{{.}}</h2>` + "\n{{end}}" +
		"<ul>\n" + `{{range $g.Options}}<li>{{template "item" (args $d . "row")}}</li>` + "\n{{end}}" +
		"</ul>\n" + `{{if $g.Name}}</section>` + "\n{{end}}{{end}}</nav>\n{{end}}" +
		`{{else}}<nav class="idps" aria-label="{{.T.providers_label}}">` + "\n<ul>\n" +
		`{{range .Options}}<li>{{template "item" (args $d . "idp")}}</li>` + "\n" +
		`{{else}}<li>{{.T.no_providers}}</li>` + "\n{{end}}</ul>\n</nav>\n{{end}}"))

// referenceProviders renders the provider section with referenceMarkup.
func referenceProviders(t testing.TB, d *TemplateData) string {
	t.Helper()
	var buf bytes.Buffer
	if err := referenceMarkup.Execute(&buf, d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestProvidersMatchTemplate(t *testing.T) {
	tricky := []Provider{
		{ID: "plain", Name: "Plain", Icon: "testdata/icon.svg", Group: "G <1>"},
		{ID: "quotes", Name: `"Quoted" & 'single' <b>bold</b>`, Group: "G <1>"},
		{ID: "unicode", Name: "Ünïcödé – 日本語", Group: `G "2"`},
		{ID: "down", Name: "Down & out", Group: `G "2"`},
	}
	p := mustPage(t, Config{})
	c := mustCatalog(t, tricky)
	for _, compact := range []bool{false, true} {
		for _, lang := range []string{"en", "de", "fr"} {
			links := testLinks("%2Fapp%3Fa%3D1")
			req := Request{Links: links, AcceptLanguage: lang, Status: func(id string) Status {
				if id == "down" {
					return Status{Reason: `<script>"x"</script> & more`}
				}
				return Status{Available: true}
			}}
			d := p.data(c, &req)
			d.Compact = compact
			got, want := string(d.Providers()), referenceProviders(t, d)
			// The reference numbers sections from 0; the fast writer by group, from 1.
			want = strings.NewReplacer(`group-0"`, `group-1"`, `group-1"`, `group-2"`).Replace(want)
			// html/template also escapes '+'; there is none here, so the bytes must match.
			if !strings.Contains(got, "&#34;Quoted&#34; &amp; &#39;single&#39; &lt;b&gt;") || strings.Contains(got, "script") {
				t.Errorf("the tricky values are missing or not escaped, or the reason is shown:\n%s", got)
			}
			if got != want {
				t.Errorf("compact=%v lang=%s: the fast writer differs from the template:\n%s\nwant\n%s", compact, lang, got, want)
			}
		}
	}
}

// FuzzProvidersMarkup checks that no name, reason or URL can add markup:
// hostile values leave exactly as many <, >, " and ' in the page as benign
// ones, and come back intact when the entities are decoded.
func FuzzProvidersMarkup(f *testing.F) {
	f.Add("Google", "down", "/oauth2/start/x", false)
	f.Add(`<script>alert("x")</script>`, `"'><img>`, "javascript:alert(1)", true)
	f.Add("a\x00b", "&amp;", "//evil.example", false)
	f.Add("+ADw-", "r", `/\evil`, true)
	p := mustPage(f, Config{})
	f.Fuzz(func(t *testing.T, name, reason, start string, compact bool) {
		out := func(name, reason, start string) string {
			c := mustCatalog(t, []Provider{{ID: "a", Name: name}, {ID: "b", Name: name}})
			req := Request{Links: Links{Static: "/s/", Start: func(string) string { return start }},
				Status: func(id string) Status { return Status{Available: id == "a", Reason: reason} }}
			d := p.data(c, &req)
			d.Compact = compact
			return string(d.Providers())
		}
		if name == "" {
			name = "x" // an empty name shows the id
		}
		hostile, benign := out(name, reason, start), out("x", "x", "/x")
		for _, ch := range []string{"<", ">", `"`, "'"} {
			if strings.Count(hostile, ch) != strings.Count(benign, ch) {
				t.Fatalf("%q changes the markup (%s):\n%s", []string{name, reason, start}, ch, hostile)
			}
		}
		plain := html.UnescapeString(hostile)
		clean := strings.ReplaceAll(name, "\x00", "\uFFFD")
		if !strings.Contains(plain, clean) {
			t.Fatalf("name %q lost:\n%s", name, hostile)
		}
		if safeURL(start) == "#ZgotmplZ" && strings.Contains(hostile, `href="`+html.EscapeString(start)+`"`) && start != "#ZgotmplZ" {
			t.Fatalf("unsafe URL %q linked", start)
		}
	})
}

func TestSafeURL(t *testing.T) {
	for u, want := range map[string]string{
		"/oauth2/start/a?rd=%2F&x=1": "/oauth2/start/a?rd=%2F&amp;x=1",
		"/p\"><script>":              "/p&#34;&gt;&lt;script&gt;",
		"javascript:alert(1)":        "#ZgotmplZ",
		"//evil.example":             "#ZgotmplZ",
		`/\evil.example`:             "#ZgotmplZ",
		"https://example.com":        "#ZgotmplZ",
		"/a\nb":                      "#ZgotmplZ",
		"":                           "#ZgotmplZ",
	} {
		if got := safeURL(u); got != want {
			t.Errorf("safeURL(%q) = %q, want %q", u, got, want)
		}
	}
}
