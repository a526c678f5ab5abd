package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// fakeProvider is a provider that never talks to an IdP: its authorization
// URL shows what it was asked for.
type fakeProvider struct {
	id, name string
	down     bool
}

var _ providers.Provider = (*fakeProvider)(nil)

func (p *fakeProvider) ID() string   { return p.id }
func (p *fakeProvider) Name() string { return p.name }
func (p *fakeProvider) Status() providers.Status {
	if p.down {
		return providers.Status{Reason: "unreachable, retrying shortly"}
	}
	return providers.Status{Available: true}
}
func (p *fakeProvider) AuthCodeURL(_ context.Context, req providers.AuthRequest) (string, error) {
	if p.down {
		return "", &providers.UnavailableError{Provider: p.id, Err: errors.New("down")}
	}
	return "https://idp.example/" + p.id + "/authorize?login_hint=" + url.QueryEscape(req.LoginHint), nil
}
func (p *fakeProvider) Exchange(context.Context, providers.Callback) (*providers.Result, error) {
	return nil, errors.New("fake provider: no exchange")
}

// providerConfig is a valid configuration entry for provider id.
func providerConfig(id string, domains ...string) providers.Config {
	return providers.Config{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Issuer: "https://idp.example/" + id,
		ClientID: "broker", ClientSecret: "secret", Domains: domains}
}

// signInServer is a broker whose registry holds fakes for cfg.Providers
// (names from the configuration; ids in down are unavailable).
func signInServer(t testing.TB, cfg Config, down ...string) (*Server, http.Handler) {
	t.Helper()
	reg := &providers.Registry{}
	for _, c := range cfg.Providers {
		isDown := false
		for _, d := range down {
			isDown = isDown || d == c.ID
		}
		reg.Add(&fakeProvider{id: c.ID, name: c.Name, down: isDown})
	}
	s, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Handler()
}

// fetch sends a GET for target (a path, or an absolute URL) through h.
func fetch(h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func realmConfig() Config {
	return Config{Providers: []providers.Config{
		providerConfig("corp", "corp.example", ".corp-group.example"),
		providerConfig("partner", "partner.example"),
		providerConfig("down", "down.example"),
		providerConfig("github"),
	}}
}

func TestSignInHomeRealm(t *testing.T) {
	_, h := signInServer(t, realmConfig(), "down")
	for _, tt := range []struct {
		login    string
		location string // "" for the page
		page     []string
	}{
		{"alice@corp.example", "/oauth2/start/corp?rd=%2Fapp&login_hint=alice%40corp.example", nil},
		{"  Alice@CORP.Example ", "/oauth2/start/corp?rd=%2Fapp&login_hint=Alice%40CORP.Example", nil},
		{"bob@eu.corp-group.example", "/oauth2/start/corp?rd=%2Fapp&login_hint=bob%40eu.corp-group.example", nil},
		{"carol@partner.example", "/oauth2/start/partner?rd=%2Fapp&login_hint=carol%40partner.example", nil},
		{"dave@elsewhere.example", "", []string{"No sign-in option is set up for “elsewhere.example”", `value="dave@elsewhere.example"`, `id="idp-corp"`}},
		{"erin", "", []string{"Please enter your full email address", `value="erin"`}},
		{"frank@down.example", "", []string{"Down is unavailable right now", `aria-disabled="true">Sign in with Down`}},
		{`"><script>alert(1)</script>@x.example`, "", []string{`value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@x.example"`}},
	} {
		w := fetch(h, "/oauth2/sign_in?rd=/app&login="+url.QueryEscape(tt.login))
		if tt.location != "" {
			if w.Code != http.StatusFound || w.Header().Get("Location") != tt.location {
				t.Errorf("login %q: %d %q, want 302 %q", tt.login, w.Code, w.Header().Get("Location"), tt.location)
			}
			continue
		}
		if w.Code != http.StatusOK {
			t.Errorf("login %q: status %d, want the page", tt.login, w.Code)
		}
		page := w.Body.String()
		for _, want := range tt.page {
			if !strings.Contains(page, want) {
				t.Errorf("login %q: page lacks %q", tt.login, want)
			}
		}
		if strings.Contains(page, "<script>alert") {
			t.Errorf("login %q reflected unescaped", tt.login)
		}
	}
	// The login_hint reaches the IdP through /oauth2/start.
	w := fetch(h, "/oauth2/start/corp?rd=%2Fapp&login_hint=alice%40corp.example")
	if loc := w.Header().Get("Location"); w.Code != http.StatusFound || !strings.Contains(loc, "login_hint=alice%40corp.example") {
		t.Errorf("start: %d %q", w.Code, loc)
	}
}

func TestSignInHomeRealmFieldOnlyWithDomains(t *testing.T) {
	_, h := signInServer(t, Config{Providers: []providers.Config{providerConfig("a"), providerConfig("b")}})
	if page := fetch(h, "/oauth2/sign_in").Body.String(); strings.Contains(page, `name="login"`) {
		t.Error("an email field without any provider domain")
	}
	_, h = signInServer(t, realmConfig())
	if page := fetch(h, "/oauth2/sign_in").Body.String(); !strings.Contains(page, `name="login"`) {
		t.Error("no email field although providers have domains")
	}
}

func TestSignInIdPHint(t *testing.T) {
	_, h := signInServer(t, realmConfig(), "down")
	for _, tt := range []struct {
		query, location, notice string
	}{
		{"idp=corp&rd=/x%3Fy%3D1", "/oauth2/start/corp?rd=%2Fx%3Fy%3D1", ""},
		{"idp=corp&rd=//evil.example", "/oauth2/start/corp?rd=%2F", ""},
		{"idp=partner&login_hint=carol", "/oauth2/start/partner?rd=%2F&login_hint=carol", ""},
		{"idp=nope", "", "There is no sign-in option called “nope”"},
		{"idp=" + url.QueryEscape(`<img src=x onerror=alert(1)>`), "", "“&lt;img src=x onerror=alert(1)&gt;”"},
		{"idp=", "", "There is no sign-in option called “”"},
		{"idp=down", "", "Down is unavailable right now"},
	} {
		w := fetch(h, "/oauth2/sign_in?"+tt.query)
		if tt.location != "" {
			if w.Code != http.StatusFound || w.Header().Get("Location") != tt.location {
				t.Errorf("%s: %d %q, want 302 %q", tt.query, w.Code, w.Header().Get("Location"), tt.location)
			}
			continue
		}
		page := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(page, tt.notice) || strings.Contains(page, "<img src=x") {
			t.Errorf("%s: %d, want the page with %q:\n%s", tt.query, w.Code, tt.notice, page)
		}
	}
}

func TestSignInCarriesRD(t *testing.T) {
	_, h := signInServer(t, realmConfig())
	page := fetch(h, "/oauth2/sign_in?rd=https://evil.example/").Body.String()
	if !strings.Contains(page, `href="/oauth2/start/corp?rd=%2F"`) || !strings.Contains(page, `name="rd" value="/"`) {
		t.Errorf("an unsafe rd survived:\n%s", page)
	}
	page = fetch(h, "/oauth2/sign_in?rd="+url.QueryEscape("/a b?c=d&e")).Body.String()
	if !strings.Contains(page, `href="/oauth2/start/corp?rd=%2Fa&#43;b%3Fc%3Dd%26e"`) && !strings.Contains(page, `href="/oauth2/start/corp?rd=%2Fa+b%3Fc%3Dd%26e"`) {
		t.Errorf("rd not carried into start URLs:\n%s", page)
	}
}

func TestSignInUnderPrefix(t *testing.T) {
	cfg := realmConfig()
	cfg.PublicURL = "https://example.com/auth"
	cfg.Providers[3].Icon = writeIcon(t)
	s, h := signInServer(t, cfg)
	page := fetch(h, "https://example.com/auth/oauth2/sign_in?rd=/auth/app").Body.String()
	for _, want := range []string{
		`href="/auth/oauth2/start/corp?rd=%2Fauth%2Fapp"`,
		`action="/auth/oauth2/sign_in"`,
		`src="/auth/oauth2/static/icons/github?v=`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	w := httptest.NewRecorder()
	s.rememberProvider(w, httptest.NewRequest(http.MethodGet, "https://example.com/auth/oauth2/start/corp", nil), "corp")
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Secure-oidc_broker_last_idp" || c[0].Path != "/auth/oauth2/" || !c[0].Secure ||
		!c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].MaxAge != 90*24*3600 {
		t.Errorf("last-used cookie %+v", c)
	}
}

// remembering wraps the broker as the lead will wire it: a login start
// remembers the provider.
func remembering(s *Server, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/oauth2/start/"); ok {
			if _, known := s.registry.Get(id); known {
				s.rememberProvider(w, r, id)
			}
		}
		h.ServeHTTP(w, r)
	})
}

func TestLastUsedCookie(t *testing.T) {
	s, h := signInServer(t, realmConfig(), "down")
	h = remembering(s, h)
	start := fetch(h, "/oauth2/start/partner?rd=/app")
	cookies := start.Result().Cookies()
	if start.Code != http.StatusFound || len(cookies) == 0 || cookies[0].Name != "oidc_broker_last_idp" {
		t.Fatalf("start: %d, cookies %v", start.Code, cookies)
	}
	c := cookies[0]
	if c.Path != "/oauth2/" || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !strings.HasPrefix(c.Value, "partner.") {
		t.Errorf("cookie %+v", c)
	}
	page := fetch(h, "/oauth2/sign_in?rd=/app", "Cookie", c.Name+"="+c.Value).Body.String()
	if !strings.Contains(page, `id="continue-last" href="/oauth2/start/partner?rd=%2Fapp">Continue with Partner</a>`) {
		t.Errorf("the last-used provider is not offered first:\n%s", page)
	}
	if i, j := strings.Index(page, `id="continue-last"`), strings.Index(page, `id="idp-corp"`); i < 0 || j < i {
		t.Error("Continue with … is not before the other providers")
	}

	sig := c.Value[len("partner."):]
	other, _ := New(realmConfig(), Options{Registry: s.registry, Logger: s.log})
	otherKey := Config{Providers: realmConfig().Providers}
	otherKey.Selection.LastUsedKey = strings.Repeat("k", 32)
	keyed, _ := New(otherKey, Options{Registry: s.registry, Logger: s.log})
	unknown := "ghost." + s.lastUsedSignature("ghost")
	for name, tt := range map[string]struct {
		srv   *Server
		value string
		want  string
	}{
		"valid":                        {s, c.Value, "partner"},
		"same process, other server":   {other, c.Value, "partner"}, // one per-process key
		"another id, same signature":   {s, "corp." + sig, ""},
		"no signature":                 {s, "partner", ""},
		"empty signature":              {s, "partner.", ""},
		"garbage":                      {s, "%%%", ""},
		"a signed id that is unknown":  {s, unknown, ""},
		"a provider that is down":      {s, "down." + s.lastUsedSignature("down"), "down"}, // known; the page does not offer it
		"signed with another key":      {keyed, c.Value, ""},
		"signed with the same key too": {keyed, "corp." + keyed.lastUsedSignature("corp"), "corp"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/sign_in", nil)
		r.AddCookie(&http.Cookie{Name: "oidc_broker_last_idp", Value: tt.value})
		if got := tt.srv.lastUsedProvider(r, tt.srv.originOf(r)); got != tt.want {
			t.Errorf("%s: last used %q, want %q", name, got, tt.want)
		}
	}
	page = fetch(h, "/oauth2/sign_in", "Cookie", "oidc_broker_last_idp=down."+s.lastUsedSignature("down")).Body.String()
	if strings.Contains(page, "continue-last") {
		t.Error("an unavailable last-used provider is offered first")
	}
}

func TestReplicasShareLastUsedKey(t *testing.T) {
	cfg := realmConfig()
	cfg.Selection.LastUsedKey = strings.Repeat("0123456789abcdef", 2)
	a, _ := signInServer(t, cfg)
	b, _ := signInServer(t, cfg)
	r := httptest.NewRequest(http.MethodGet, "/oauth2/sign_in", nil)
	r.AddCookie(&http.Cookie{Name: "oidc_broker_last_idp", Value: "corp." + a.lastUsedSignature("corp")})
	if got := b.lastUsedProvider(r, b.originOf(r)); got != "corp" {
		t.Errorf("a replica with the same key read %q", got)
	}
}

func TestAutoRedirect(t *testing.T) {
	one := Config{Providers: []providers.Config{providerConfig("only")}}
	one.Selection.AutoRedirect = true
	two := Config{Providers: []providers.Config{providerConfig("a"), providerConfig("b")}}
	two.Selection.AutoRedirect = true
	off := Config{Providers: []providers.Config{providerConfig("only")}}
	for _, tt := range []struct {
		name     string
		cfg      Config
		down     []string
		query    string
		redirect bool
	}{
		{"one provider", one, nil, "?rd=/app", true},
		{"one provider, down", one, []string{"only"}, "", false},
		{"a search", one, nil, "?q=x", false},
		{"an unknown idp hint", one, nil, "?idp=nope", false},
		{"two providers", two, nil, "", false},
		{"one down of two", two, []string{"b"}, "", false},
		{"off by default", off, nil, "", false},
	} {
		_, h := signInServer(t, tt.cfg, tt.down...)
		w := fetch(h, "/oauth2/sign_in"+tt.query)
		if got := w.Code == http.StatusFound; got != tt.redirect {
			t.Errorf("%s: status %d, redirect %v want %v", tt.name, w.Code, got, tt.redirect)
		}
		if tt.redirect && w.Header().Get("Location") != "/oauth2/start/only?rd=%2Fapp" {
			t.Errorf("%s: Location %q", tt.name, w.Header().Get("Location"))
		}
	}
}

func TestSignInSearchAndList(t *testing.T) {
	cfg := Config{}
	for i := range 12 {
		p := providerConfig(fmt.Sprintf("tenant-%02d", i))
		p.Name = fmt.Sprintf("Tenant %d", i)
		p.Group = []string{"Europe", "Americas"}[i%2]
		cfg.Providers = append(cfg.Providers, p)
	}
	_, h := signInServer(t, cfg)
	page := fetch(h, "/oauth2/sign_in").Body.String()
	for _, want := range []string{`<input id="q" name="q" type="search"`, `<h2 id="group-1">Europe</h2>`, `<h2 id="group-2">Americas</h2>`,
		`<script src="/oauth2/static/select.js?v=`, `class="row" id="idp-tenant-11"`} {
		if !strings.Contains(page, want) {
			t.Errorf("list page lacks %q", want)
		}
	}
	page = fetch(h, "/oauth2/sign_in?rd=/x&q=TENANT+1").Body.String()
	for id, want := range map[string]bool{"tenant-01": true, "tenant-10": true, "tenant-11": true, "tenant-02": false, "tenant-00": false} {
		if got := strings.Contains(page, `id="idp-`+id+`"`); got != want {
			t.Errorf("q=TENANT 1: %s shown %v, want %v", id, got, want)
		}
	}
	if !strings.Contains(page, "Showing 3 of 12 for “TENANT 1”.") || !strings.Contains(page, `href="/oauth2/sign_in?rd=%2Fx">Show all</a>`) {
		t.Errorf("search result not described:\n%s", page)
	}
}

func TestSignInHeadersAndLanguage(t *testing.T) {
	_, h := signInServer(t, realmConfig())
	w := fetch(h, "/oauth2/sign_in", "Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
	hdr := w.Header()
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-Frame-Options") != "DENY" || !strings.Contains(strings.Join(hdr.Values("Vary"), ","), "Accept-Language") {
		t.Errorf("headers %v", hdr)
	}
	if page := w.Body.String(); !strings.Contains(page, `<html lang="de">`) || !strings.Contains(page, "Anmelden mit Corp") {
		t.Errorf("not German:\n%s", page)
	}
}

func TestSignInWithRegistryOnly(t *testing.T) {
	reg := &providers.Registry{}
	reg.Add(&fakeProvider{id: "x", name: "X"})
	s, err := New(Config{}, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if page := fetch(s.Handler(), "/oauth2/sign_in").Body.String(); !strings.Contains(page, `href="/oauth2/start/x?rd=%2F">Sign in with X</a>`) {
		t.Errorf("page:\n%s", page)
	}
}

// writeIcon writes an SVG icon into a temporary directory.
func writeIcon(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "icon.svg")
	if err := os.WriteFile(path, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 2 2"><rect width="2" height="2"/></svg>`), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStaticAssets(t *testing.T) {
	cfg := realmConfig()
	cfg.Providers[0].Icon = writeIcon(t)
	cfg.Selection.Logo = writeIcon(t)
	_, h := signInServer(t, cfg)
	page := fetch(h, "/oauth2/sign_in").Body.String()
	i := strings.Index(page, `/oauth2/static/icons/corp?v=`)
	if i < 0 {
		t.Fatalf("no icon on the page:\n%s", page)
	}
	iconURL := page[i : i+strings.IndexByte(page[i:], '"')]
	w := fetch(h, iconURL)
	hdr := w.Header()
	if w.Code != http.StatusOK || hdr.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(w.Body.String(), "<svg") {
		t.Fatalf("icon: %d %q", w.Code, hdr.Get("Content-Type"))
	}
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "public, max-age=31536000, immutable",
	} {
		if hdr.Get(k) != v {
			t.Errorf("icon %s = %q, want %q", k, hdr.Get(k), v)
		}
	}
	if w := fetch(h, "/oauth2/static/icons/corp?v=old"); w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("an old hash: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
	if w := fetch(h, iconURL, "If-None-Match", hdr.Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d", w.Code)
	}
	for path, want := range map[string]int{
		"/oauth2/static/logo":          http.StatusOK,
		"/oauth2/static/select.js":     http.StatusOK,
		"/oauth2/static/icons/partner": http.StatusNotFound, // no icon
		"/oauth2/static/icons/nope":    http.StatusNotFound,
		"/oauth2/static/icons/..%2Fx":  http.StatusNotFound,
		"/oauth2/static/":              http.StatusNotFound,
	} {
		if w := fetch(h, path); w.Code != want {
			t.Errorf("GET %s: %d, want %d", path, w.Code, want)
		}
	}
	if ct := fetch(h, "/oauth2/static/select.js").Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("script Content-Type %q", ct)
	}
}

func TestSelectionConfigProblems(t *testing.T) {
	icon := writeIcon(t)
	yaml := `providers:
  - id: okta
    issuer: https://okta.example
    client_id: a
    client_secret: b
    domains: [example.com, "bad domain"]
    icon: ` + icon + `
  - id: entra
    issuer: https://login.example
    client_id: a
    client_secret: b
    domains:
      - EXAMPLE.COM
    icon: https://cdn.example/entra.png
selection:
  colors:
    primary: "red; background: url(x)"
  footer_links:
    - text: Privacy
      url: javascript:alert(1)
  last_used_key: short
  template_dir: /nonexistent
`
	_, err := ParseConfig("broker.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := map[string]int{
		`providers[0].domains[1]: "bad domain" is not a DNS name`:                      6,
		`providers[1].domains[0]: "EXAMPLE.COM" is also claimed by provider "okta"`:    13,
		`providers[1].icon: "https://cdn.example/entra.png" is a URL`:                  14,
		`selection.colors.primary: "red; background: url(x)" must be a CSS hex colour`: 17,
		`selection.footer_links[0].url: "javascript:alert(1)" must be an https URL`:    20,
		"selection.last_used_key: must be at least 32 bytes":                           21,
		`selection.template_dir: "/nonexistent" is not a readable directory`:           22,
	}
	for _, p := range cerr.Problems {
		for w, line := range want {
			if strings.HasPrefix(p.Message, w) {
				if p.Line != line {
					t.Errorf("%q at line %d, want %d", p.Message, p.Line, line)
				}
				delete(want, w)
			}
		}
	}
	for w := range want {
		t.Errorf("no problem %q in:\n%v", w, err)
	}
}

func TestSelectionWarnings(t *testing.T) {
	cfg := realmConfig()
	cfg.Selection.Colors.Text = "#eeeeee"
	if w := cfg.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "selection.colors.text #eeeeee on colors.background (default) #ffffff has a contrast of 1.2:1") {
		t.Errorf("warnings %q", w)
	}
}

// BenchmarkSignInPage1000Providers is GET /oauth2/sign_in through the whole
// handler (middleware, session, the page) with a thousand providers.
func BenchmarkSignInPage1000Providers(b *testing.B) { benchmarkSignInPage(b, 1000) }

// BenchmarkSignInPage10000Providers is the same with ten thousand (issue
// 18: the page's median under 2 ms at that size).
func BenchmarkSignInPage10000Providers(b *testing.B) { benchmarkSignInPage(b, 10000) }

func benchmarkSignInPage(b *testing.B, n int) {
	cfg := Config{}
	for i := range n {
		p := providerConfig(fmt.Sprintf("tenant-%04d", i), fmt.Sprintf("tenant%d.example", i))
		p.Name, p.Group = fmt.Sprintf("Tenant %d GmbH", i), fmt.Sprintf("Region %d", i%10)
		cfg.Providers = append(cfg.Providers, p)
	}
	_, h := signInServer(b, cfg)
	for _, bb := range []struct{ name, target string }{
		{"all", "/oauth2/sign_in?rd=/app"},
		{"search", "/oauth2/sign_in?rd=/app&q=tenant+4"},
		{"home-realm", "/oauth2/sign_in?rd=/app&login=alice%40tenant999.example"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w := fetch(h, bb.target, "Accept-Language", "en-GB,en;q=0.9"); w.Code != http.StatusOK && w.Code != http.StatusFound {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
