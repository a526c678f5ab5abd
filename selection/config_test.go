package selection

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	long := strings.Repeat("k", MinLastUsedKeyLength)
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string // substrings, nil for valid
	}{
		{"zero value", Config{}, nil},
		{"everything", Config{Title: "T", Logo: "testdata/logo.svg", Colors: Colors{Primary: "#123", Background: "#FFFFFF", Text: "#000000"},
			FooterLinks: []Link{{Text: "Privacy", URL: "https://example.com/p"}, {Text: "Help", URL: "/help?x=1"}},
			TemplateDir: "testdata/theme", TranslationsDir: "testdata/lang", ListThreshold: 20, AutoRedirect: true, LastUsedKey: long}, nil},
		{"colours", Config{Colors: Colors{Primary: "red", Background: "#12345", Text: "#000;background:url(x)"}},
			[]string{`colors.primary: "red" must be a CSS hex colour`, "colors.background:", "colors.text:"}},
		{"footer links", Config{FooterLinks: []Link{{Text: "", URL: "/ok"}, {Text: "a", URL: "javascript:alert(1)"}, {Text: "b", URL: "http://example.com"},
			{Text: "c", URL: "//evil.example"}, {Text: "d", URL: "relative"}, {Text: "e", URL: `/\evil.example`}}},
			[]string{"footer_links[0].text: is required", "footer_links[1].url", "footer_links[2].url", "footer_links[3].url", "footer_links[4].url", "footer_links[5].url"}},
		{"threshold", Config{ListThreshold: -1}, []string{"list_threshold: must not be negative"}},
		{"short key", Config{LastUsedKey: "short"}, []string{"last_used_key: must be at least 32 bytes (it is 5)"}},
		{"logo URL", Config{Logo: "https://cdn.example/logo.png"}, []string{"logo: \"https://cdn.example/logo.png\" is a URL"}},
		{"logo missing", Config{Logo: "testdata/none.png"}, []string{"logo: cannot read the image"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := New(tt.cfg); err == nil {
				t.Error("New accepted what Validate refused")
			}
		})
	}
}

func TestDefaultColoursMeetWCAGAA(t *testing.T) {
	c := Config{}
	if w := c.Warnings(); len(w) > 0 {
		t.Errorf("default colours: %v", w)
	}
	p := c.palette()
	css := p.css()
	for name, pair := range map[string][2]string{
		"text on background":       {string(css.Text), string(css.Background)},
		"muted on background":      {string(css.Muted), string(css.Background)},
		"on-primary on primary":    {string(css.OnPrimary), string(css.Primary)},
		"primary on background":    {string(css.Primary), string(css.Background)},
		"text on hover":            {string(css.Text), string(css.Hover)},
		"disabled text on its box": {string(css.DisabledText), string(css.Disabled)},
		"notice text":              {"#1b1f24", "#fdecea"},
	} {
		if r := contrast(parseHex(pair[0]), parseHex(pair[1])); r < 4.5 {
			t.Errorf("%s: %s on %s has contrast %.2f, want ≥ 4.5", name, pair[0], pair[1], r)
		}
	}
	if r := contrast(parseHex(string(css.Border)), parseHex(string(css.Background))); r < 3 {
		t.Errorf("borders of controls: contrast %.2f, want ≥ 3", r)
	}
}

func TestColourWarnings(t *testing.T) {
	w := Config{Colors: Colors{Primary: "#ffff00", Text: "#cccccc"}}.Warnings()
	if len(w) != 2 || !strings.Contains(w[0], "colors.text #cccccc on colors.background (default) #ffffff has a contrast of 1.6:1") {
		t.Errorf("warnings %q", w)
	}
	// A dark theme gets light muted text and black or white on its primary.
	p := Config{Colors: Colors{Primary: "#8ab4f8", Background: "#202124", Text: "#e8eaed"}}.palette()
	css := p.css()
	if css.OnPrimary != "#000000" {
		t.Errorf("on-primary for a light primary = %s", css.OnPrimary)
	}
	if r := contrast(parseHex(string(css.Muted)), p.background); r < 4.5 {
		t.Errorf("muted text on a dark background: %.2f", r)
	}
}

func TestLoadImage(t *testing.T) {
	dir := t.TempDir()
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"a.png":      pngBuf.Bytes(),
		"a.ico":      append([]byte{0, 0, 1, 0, 1, 0}, make([]byte, 16)...),
		"a.webp":     append([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), make([]byte, 8)...),
		"a.svg":      []byte("<?xml version=\"1.0\"?>\n<!-- logo -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
		"fake.svg":   []byte("<html><svg/></html>"),
		"fake.png":   []byte("GIF89a......"),
		"big.svg":    append([]byte("<svg>"), make([]byte, MaxImageSize)...),
		"script.svg": []byte("<script>alert(1)</script>"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{
		"a.png": "image/png", "a.ico": "image/x-icon", "a.webp": "image/webp", "a.svg": "image/svg+xml",
		"fake.svg": "", "fake.png": "", "big.svg": "", "script.svg": "",
	} {
		a, err := LoadImage(filepath.Join(dir, name))
		if a.ContentType != want || (err == nil) != (want != "") {
			t.Errorf("LoadImage(%s) = %q, %v; want %q", name, a.ContentType, err, want)
		}
		if err == nil && (len(a.Hash) != 16 || !bytes.Equal(a.Data, files[name])) {
			t.Errorf("LoadImage(%s): hash %q, %d bytes", name, a.Hash, len(a.Data))
		}
	}
	for _, u := range []string{"https://x.example/a.png", "http://x/a.png", "//x.example/a.png", "data:image/png;base64,AAAA", "HTTPS://X/A.PNG"} {
		if _, err := LoadImage(u); err == nil || !strings.Contains(err.Error(), "is a URL") {
			t.Errorf("LoadImage(%q) = %v, want a URL error", u, err)
		}
	}
}
