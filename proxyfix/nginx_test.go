package proxyfix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
)

// nginxData holds the fields of the templates under testdata/nginx, which the e2e tests
// render and docs/proxies.md quotes.
type nginxData struct {
	Dir                                  string
	ListenPort, MiddlePort, UpstreamPort int
	CertFile, KeyFile                    string
}

// TestNginxTemplates renders every template and checks what every config must have: its
// own pid, temp and log paths, and loopback-only listeners. e2e/TestBehindNginx runs them
// in real nginx (after `nginx -t`).
func TestNginxTemplates(t *testing.T) {
	files, err := filepath.Glob("testdata/nginx/*.conf.tmpl")
	if err != nil || len(files) != 3 {
		t.Fatalf("templates: %v, %v", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dir := t.TempDir()
			data := nginxData{Dir: dir, ListenPort: 18443, MiddlePort: 18081, UpstreamPort: 18080,
				CertFile: dir + "/cert.pem", KeyFile: dir + "/key.pem"}
			tmpl := template.Must(template.New(filepath.Base(file)).Option("missingkey=error").ParseFiles(file))
			var b strings.Builder
			if err := tmpl.Execute(&b, data); err != nil {
				t.Fatal(err)
			}
			conf := b.String()
			for _, want := range []string{"pid " + dir + "/", "error_log stderr;", "client_body_temp_path", "proxy_temp_path",
				"fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path", "listen 127.0.0.1:18443 ssl http2"} {
				if !strings.Contains(conf, want) {
					t.Errorf("rendered config lacks %q", want)
				}
			}
			for _, line := range strings.Split(conf, "\n") {
				if l := strings.TrimSpace(line); strings.HasPrefix(l, "listen ") && !strings.HasPrefix(l, "listen 127.0.0.1:") {
					t.Errorf("listens beyond loopback: %q", l)
				}
			}
		})
	}
}

// TestNginxTemplatesDocumented checks that docs/proxies.md quotes every template as it is.
func TestNginxTemplatesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/nginx/*.conf.tmpl")
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		quoted := "`proxyfix/testdata/nginx/" + filepath.Base(file) + "`:\n\n```nginx\n" + string(body) + "```\n"
		if !strings.Contains(string(doc), quoted) {
			t.Errorf("docs/proxies.md does not quote %s verbatim", file)
		}
	}
}
