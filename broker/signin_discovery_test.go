package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// countingProvider counts the Status calls the sign-in page makes.
type countingProvider struct {
	*fakeProvider
	calls *atomic.Int64
}

func (p countingProvider) Status() providers.Status {
	p.calls.Add(1)
	return p.fakeProvider.Status()
}

var listedRE = regexp.MustCompile(` id="idp-([^"]+)"`)

// TestSignInDiscoveryView: above selection.discovery_threshold the page
// lists only the featured providers, or a search's first matches, and asks
// the registry about those only; home-realm discovery still leads to the
// provider of an email's domain.
func TestSignInDiscoveryView(t *testing.T) {
	cfg := Config{}
	for i := range 1000 {
		p := providerConfig(fmt.Sprintf("tenant-%04d", i), fmt.Sprintf("tenant%d.example", i))
		p.Name, p.Group = fmt.Sprintf("Tenant %d GmbH", i), fmt.Sprintf("Region %d", i%10)
		cfg.Providers = append(cfg.Providers, p)
	}
	cfg.Selection.Featured = []string{"tenant-0700", "tenant-0007"}
	var calls atomic.Int64
	reg := &providers.Registry{}
	for _, c := range cfg.Providers {
		reg.Add(countingProvider{&fakeProvider{id: c.ID, name: c.Name, down: c.ID == "tenant-0007"}, &calls})
	}
	s, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	h := s.Handler()

	listed := func(body string) string {
		var ids []string
		for _, m := range listedRE.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		return strings.Join(ids, ",")
	}
	calls.Store(0)
	w := fetch(h, "/oauth2/sign_in?rd=/app", "Accept-Language", "de")
	body := w.Body.String()
	if w.Code != http.StatusOK || listed(body) != "tenant-0700,tenant-0007" {
		t.Fatalf("page: %d, lists %s; want the two featured", w.Code, listed(body))
	}
	for _, want := range []string{`<h2 id="found-label">Häufig verwendet</h2>`, `href="/oauth2/start/tenant-0700?rd=%2Fapp"`,
		`<span class="row" id="idp-tenant-0007" role="link" aria-disabled="true">`, `id="login"`, `aria-describedby="q-help"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := calls.Load(); n > 2 {
		t.Errorf("the page asked %d providers for their status, want only the 2 it shows", n)
	}
	if len(body) > 20_000 {
		t.Errorf("the page of 1,000 providers is %d bytes", len(body))
	}

	calls.Store(0)
	body = fetch(h, "/oauth2/sign_in?rd=/app&q=tenant+4").Body.String()
	if got := strings.Split(listed(body), ","); len(got) != 50 || got[0] != "tenant-0004" || !strings.Contains(body, "Showing the first 50 of 111 matches for “tenant 4”.") {
		t.Errorf("search: lists %d (%v…)", len(got), got[0])
	}
	if n := calls.Load(); n > 50 {
		t.Errorf("the search asked %d providers for their status, want at most the 50 it shows", n)
	}
	body = fetch(h, "/oauth2/sign_in?rd=/app&q=%22%3E%3Cscript%3E").Body.String()
	if strings.Contains(body, `"><script>`) || !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;"`) {
		t.Error("the query is not escaped")
	}

	w = fetch(h, "/oauth2/sign_in?rd=/app&login=alice%40tenant999.example")
	if want := "/oauth2/start/tenant-0999?rd=%2Fapp&login_hint=alice%40tenant999.example"; w.Code != http.StatusFound || w.Header().Get("Location") != want {
		t.Errorf("home-realm discovery: %d to %q, want 302 to %s", w.Code, w.Header().Get("Location"), want)
	}
}

func TestSelectionDiscoveryConfigProblems(t *testing.T) {
	yaml := `providers:
  - id: okta
    issuer: https://okta.example
    client_id: a
    client_secret: b
selection:
  list_threshold: 20
  discovery_threshold: 10
  featured: [okta, nope]
`
	_, err := ParseConfig("broker.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := map[string]bool{
		"selection.discovery_threshold: is 10, below list_threshold (20)":      true,
		`selection.featured[1]: "nope" is not the id of a configured provider`: true,
	}
	for _, p := range cerr.Problems {
		for w := range want {
			if strings.HasPrefix(p.Message, w) {
				if p.Line == 0 {
					t.Errorf("%q has no line", p.Message)
				}
				delete(want, w)
			}
		}
	}
	for w := range want {
		t.Errorf("no problem %q in:\n%v", w, err)
	}
}
