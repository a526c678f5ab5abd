package selection

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLanguageMatch(t *testing.T) {
	tr, errs := loadTranslations("testdata/lang")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct{ header, want string }{
		{"", "en"},
		{"de", "de"},
		{"de-CH", "de"}, // prefix matching
		{"DE-ch", "de"},
		{"fr-CA,fr;q=0.9,en;q=0.8", "fr"},
		{"it, de;q=0.5", "de"}, // an unknown language is skipped
		{"en;q=0.4, de;q=0.8", "de"},
		{"de;q=0, fr", "fr"}, // q=0 means "not this one"
		{"de;q=0", "en"},
		{"*", "en"},
		{"nl-BE", "nl"}, // from the translations directory
		{"zh-Hant-TW, de;q=0.1", "de"},
		{"de;q=2, fr", "fr"},   // malformed q-values are ignored
		{"<script>, fr", "fr"}, // and malformed tags
		{strings.Repeat("xx,", 20) + "de", "en"},
	} {
		if got := tr.match(tt.header).tag; got != tt.want {
			t.Errorf("Accept-Language %q: %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestTranslationsDir(t *testing.T) {
	p := mustPage(t, Config{TranslationsDir: "testdata/lang"})
	c := mustCatalog(t, []Provider{{ID: "a", Name: "A"}})
	de := render(t, p, c, Request{Links: testLinks("%2F"), AcceptLanguage: "de"})
	// de.yaml there overrides the title and keeps the embedded German for the rest.
	for _, want := range []string{`<html lang="de">`, "<h1>Willkommen</h1>", "Anmelden mit A"} {
		if !strings.Contains(de, want) {
			t.Errorf("German page lacks %q", want)
		}
	}
	nl := render(t, p, c, Request{Links: testLinks("%2F"), AcceptLanguage: "nl"})
	// nl.json is a new language; what it leaves out is English.
	for _, want := range []string{`<html lang="nl">`, "<h1>Inloggen</h1>", "Inloggen met A", `aria-label="Sign-in options"`} {
		if !strings.Contains(nl, want) {
			t.Errorf("Dutch page lacks %q", want)
		}
	}
}

func TestTranslationErrors(t *testing.T) {
	for name, tt := range map[string]struct{ file, text, want string }{
		"unknown key":         {"de.yaml", "titel: Anmelden\n", `unknown message key "titel"`},
		"missing placeholder": {"de.yaml", "sign_in_with: Anmelden\n", "sign_in_with: uses placeholders [], want [{provider}]"},
		"wrong placeholder":   {"de.yaml", "sign_in_with: Anmelden mit {anbieter}\n", "uses placeholders [{anbieter}]"},
		"not a map":           {"de.yaml", "- a\n- b\n", "not a flat map"},
		"nested":              {"de.yaml", "title: {a: b}\n", "not a flat map"},
		"duplicate key":       {"de.yaml", "title: a\ntitle: b\n", "not a flat map"},
		"bad file name":       {"deutsch!.yaml", "title: a\n", "the file name must be a language tag"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{TranslationsDir: dir})
			if err == nil || !strings.Contains(err.Error(), "translations_dir: "+tt.file) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want translations_dir: %s: …%s", err, tt.file, tt.want)
			}
		})
	}
	if _, err := New(Config{TranslationsDir: "testdata/nope"}); err == nil {
		t.Error("a missing translations_dir was accepted")
	}
}

// TestEmbeddedTranslationsComplete keeps the embedded languages in step with
// English: every key translated.
func TestEmbeddedTranslationsComplete(t *testing.T) {
	en, err := readMessages(i18nFS, "i18n/en.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"de", "fr"} {
		m, err := readMessages(i18nFS, "i18n/"+lang+".yaml")
		if err != nil {
			t.Fatal(err)
		}
		for k := range en {
			if _, ok := m[k]; !ok {
				t.Errorf("%s.yaml lacks %s", lang, k)
			}
		}
		if errs := checkMessages(en, m); len(errs) > 0 {
			t.Errorf("%s.yaml: %v", lang, errs)
		}
	}
}

func TestMessagesFormat(t *testing.T) {
	m := Messages{"x": "{a} and {b} and {a}"}
	if got := m.Format("x", "a", "1", "b", "<2>"); got != "1 and <2> and 1" {
		t.Errorf("Format = %q", got)
	}
	if got := m.Format("missing", "a", "1"); got != "" {
		t.Errorf("Format of a missing key = %q", got)
	}
}
