package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// integrationTemplates are the forward-auth configurations under testdata that the e2e tests
// run and docs/integrations.md quotes, with the code-block language the page uses.
var integrationTemplates = []struct{ file, lang, loopback string }{
	{"nginx-auth-request.conf.tmpl", "nginx", "listen 127.0.0.1:"},
	{"Caddyfile.tmpl", "caddyfile", "bind 127.0.0.1\n"},
}

// brokerTrust is the header-comment line of a template that names the broker's
// trusted_proxies (the e2e tests configure the broker so, see checkDocumentedTrust).
var brokerTrust = regexp.MustCompile(`(?m)^# Broker: (trusted_proxies: .*)$`)

// TestIntegrationTemplatesDocumented checks that docs/integrations.md quotes each template
// as it is, next to the trusted_proxies its header comment names, and that each serves on
// loopback only. It needs no proxy installed, so it runs without the e2e tag too.
func TestIntegrationTemplatesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range integrationTemplates {
		body, err := os.ReadFile("testdata/" + tmpl.file)
		if err != nil {
			t.Fatal(err)
		}
		quoted := "`e2e/testdata/" + tmpl.file + "`:\n\n```" + tmpl.lang + "\n" + string(body) + "```\n"
		if !strings.Contains(string(doc), quoted) {
			t.Errorf("docs/integrations.md does not quote e2e/testdata/%s verbatim", tmpl.file)
		}
		m := brokerTrust.FindSubmatch(body)
		if m == nil {
			t.Errorf("%s: no \"# Broker: trusted_proxies: ...\" line", tmpl.file)
		} else if want := "```yaml\n" + string(m[1]) + "\n```\n"; !strings.Contains(string(doc), want) {
			t.Errorf("docs/integrations.md does not show %q for %s", m[1], tmpl.file)
		}
		if !strings.Contains(string(body), tmpl.loopback) {
			t.Errorf("%s lacks %q", tmpl.file, tmpl.loopback)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "listen ") && !strings.HasPrefix(l, "listen 127.0.0.1:") {
				t.Errorf("%s listens beyond loopback: %q", tmpl.file, l)
			}
		}
	}
}
