package selection

import (
	"bytes"
	"flag"
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

func TestRenderGolden(t *testing.T) {
	p, err := New(Config{Title: "Sign in to Example"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = p.Render(&buf, Data{Options: []Option{
		{ID: "google", Name: "Google", StartURL: "/oauth2/start/google?rd=%2Fapp", Available: true},
		{ID: "kc", Name: `Keycloak <"corp">`, StartURL: "/oauth2/start/kc?rd=%2Fapp", Available: true},
		{ID: "okta", Name: "Okta", StartURL: "/oauth2/start/okta?rd=%2Fapp", Reason: "unreachable, retrying shortly"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "select.golden.html", buf.Bytes())
}

func TestRenderEscapesAndDisables(t *testing.T) {
	p, _ := New(Config{})
	var buf bytes.Buffer
	_ = p.Render(&buf, Data{Options: []Option{
		{ID: "x", Name: "<script>alert(1)</script>", StartURL: "javascript:alert(1)", Available: true},
		{ID: "down", Name: "Down", StartURL: "/oauth2/start/down", Reason: "unreachable"},
	}})
	html := buf.String()
	if strings.Contains(html, "<script>alert") {
		t.Error("provider name not escaped")
	}
	if strings.Contains(html, `href="javascript:`) {
		t.Error("javascript: URL not neutralised")
	}
	if strings.Contains(html, `href="/oauth2/start/down"`) {
		t.Error("an unavailable provider is clickable")
	}
	for _, want := range []string{`<html lang="en">`, `<title>Sign in</title>`, `aria-disabled="true"`, "Unavailable: unreachable"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
