package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	rdFieldRE   = regexp.MustCompile(`name="rd" value="([^"]+)"`)
	requestIDRE = regexp.MustCompile(`<code id="request-id">([^<]+)</code>`)
	styleRE     = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// TestForbiddenPageHelps: the 403 of an access rule says who is signed in
// with which provider, offers "Use another account" (sign out, then the
// sign-in page with the same rd) and "Go back", and shows the request ID
// that the log line of the refusal carries.
func TestForbiddenPageHelps(t *testing.T) {
	e := newEnv(t, withRules())
	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	resp := e.request(bob, http.MethodGet, "/admin/x?y=1", map[string]string{"Referer": e.broker.URL + "/public/list"})
	page := body(resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `<html lang="en">`) {
		t.Fatalf("bob on /admin/: %d %s", resp.StatusCode, page)
	}
	for _, want := range []string{`<strong id="who-user">bob</strong>`, `with Alpha</span>`, `id="use-another-account">Use another account</button>`,
		`<a class="button secondary" id="go-back" href="` + e.broker.URL + `/public/list">Go back</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the 403 page lacks %q:\n%s", want, page)
		}
	}
	id := requestIDRE.FindStringSubmatch(page)
	if id == nil || id[1] != resp.Header.Get("X-Request-Id") {
		t.Fatalf("reference %v, X-Request-Id %q", id, resp.Header.Get("X-Request-Id"))
	}
	if !regexp.MustCompile(`msg="access denied".*request_id=` + regexp.QuoteMeta(id[1])).MatchString(e.logs.String()) {
		t.Errorf("no access-denied log line with request_id=%s:\n%s", id[1], e.logs.String())
	}
	rd := rdFieldRE.FindStringSubmatch(page)
	if rd == nil || html.UnescapeString(rd[1]) != e.broker.URL+"/oauth2/sign_in?rd="+url.QueryEscape("/admin/x?y=1") {
		t.Fatalf("use another account: rd %v", rd)
	}
	// Use another account: signed out, on to the sign-in page with the rd.
	csrf := csrfFieldRE.FindStringSubmatch(page)
	out := e.do(bob, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {csrf[1]}, "rd": {html.UnescapeString(rd[1])}})
	// Through the IdP's end_session_endpoint and back to the broker.
	for i := 0; i < 4 && out.Header.Get("Location") != html.UnescapeString(rd[1]); i++ {
		if out.StatusCode/100 != 3 {
			t.Fatalf("sign-out: %d %s", out.StatusCode, body(out))
		}
		out = e.do(bob, http.MethodGet, out.Header.Get("Location"), nil)
	}
	if out.Header.Get("Location") != html.UnescapeString(rd[1]) {
		t.Fatalf("sign-out ends at %d %q", out.StatusCode, out.Header.Get("Location"))
	}
	if e.signedIn(bob) {
		t.Error("still signed in after Use another account")
	}
}

// An rd the 403 would carry is checked like every rd: a Referer on another
// site is not where "Go back" leads.
func TestForbiddenGoBackOnlyToAllowedHosts(t *testing.T) {
	e := newEnv(t, withRules())
	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	page := body(e.request(bob, http.MethodGet, "/admin/x", map[string]string{"Referer": "https://evil.example/phish"}))
	if strings.Contains(page, "evil.example") || !strings.Contains(page, `id="go-back" href="`+e.broker.URL+`/"`) {
		t.Errorf("go back:\n%s", page)
	}
}

// TestErrorPagesTranslated: the broker's pages speak the browser's
// language, like the sign-in page.
func TestErrorPagesTranslated(t *testing.T) {
	e := newEnv(t, withRules())
	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	page := body(e.request(bob, http.MethodGet, "/admin/x", map[string]string{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}))
	for _, want := range []string{`<html lang="de">`, "<h1>Zugriff verweigert</h1>", "Anderes Konto verwenden", "Referenz:"} {
		if !strings.Contains(page, want) {
			t.Errorf("German 403 lacks %q", want)
		}
	}
	page = body(e.request(nil, http.MethodGet, "/oauth2/nope", map[string]string{"Accept-Language": "fr"}))
	if !strings.Contains(page, `<html lang="fr">`) || !strings.Contains(page, "<h1>Page introuvable</h1>") {
		t.Errorf("French 404:\n%s", page)
	}
}

// TestErrorsAreJSONForAPIClients: 403, 404 and the rest answer JSON to a
// client that asks for it, with the request ID; an API call to a
// protected route gets JSON as for the 401.
func TestErrorsAreJSONForAPIClients(t *testing.T) {
	e := newEnv(t, withRules())
	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	type errBody struct {
		Error, Message, User, Provider string
		RequestID                      string `json:"request_id"`
	}
	for _, tt := range []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		code               string
	}{
		{"403 Accept json", http.MethodGet, "/admin/x", map[string]string{"Accept": "application/json"}, http.StatusForbidden, "forbidden"},
		{"403 API DELETE", http.MethodDelete, "/api/x", nil, http.StatusForbidden, "forbidden"},
		{"404", http.MethodGet, "/oauth2/nope", map[string]string{"Accept": "application/json"}, http.StatusNotFound, "not_found"},
		{"400 callback", http.MethodGet, "/oauth2/callback/alpha", map[string]string{"Accept": "application/json"}, http.StatusBadRequest, "signin_failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.request(bob, tt.method, tt.path, tt.hdr)
			var b errBody
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body(resp)), &b) != nil {
				t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body(resp))
			}
			if b.Error != tt.code || b.Message == "" || b.RequestID == "" || b.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("%+v (X-Request-Id %q)", b, resp.Header.Get("X-Request-Id"))
			}
			if tt.status == http.StatusForbidden && (b.User != "bob" || b.Provider != "Alpha") {
				t.Errorf("403 names %q at %q", b.User, b.Provider)
			}
		})
	}
	if resp := e.request(bob, http.MethodGet, "/oauth2/nope", map[string]string{"Accept": "text/html,application/json;q=0.9"}); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("a browser got %q", resp.Header.Get("Content-Type"))
	}
}

// TestPagesCSPAllowsOnlyTheirStylesheet: no 'unsafe-inline'; the inline
// stylesheet is allowed by its hash, on every page.
func TestPagesCSPAllowsOnlyTheirStylesheet(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/oauth2/sign_in", "/oauth2/sign_out", "/oauth2/nope"} {
		resp := e.request(nil, http.MethodGet, path, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		m := styleRE.FindStringSubmatch(body(resp))
		if m == nil {
			t.Fatalf("%s: no stylesheet", path)
		}
		sum := sha256.Sum256([]byte(m[1]))
		if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
			t.Errorf("%s: CSP %q does not allow exactly its stylesheet", path, csp)
		}
	}
}

// TestForwardAuthForbiddenPage: the 403 a proxy shows (Traefik and Caddy
// as it is, nginx by error_page) has absolute links to the broker, and
// "Use another account" leads to the sign-out confirmation with the
// denied request as rd; an API call gets JSON.
func TestForwardAuthForbiddenPage(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1/32"))
	bob := newBrowser()
	e.client = bob
	e.login("alpha", "bob", "/")
	resp := e.request(bob, http.MethodGet, "/oauth2/auth", traefik(e, "/admin/x", "GET"))
	page := body(resp)
	switchURL := e.broker.URL + "/oauth2/sign_out?rd=" + url.QueryEscape(e.broker.URL+"/oauth2/sign_in?rd="+url.QueryEscape(e.broker.URL+"/admin/x"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `id="use-another-account" href="`+html.EscapeString(switchURL)+`"`) ||
		!strings.Contains(page, `<strong id="who-user">bob</strong>`) || requestIDRE.FindStringSubmatch(page) == nil {
		t.Errorf("forward-auth 403: %d\n%s\nwant link %s", resp.StatusCode, page, switchURL)
	}
	resp = e.request(bob, http.MethodGet, "/oauth2/auth", traefik(e, "/api/items/1", "DELETE"))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("forward-auth 403 for an API call: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The sign-out confirmation names the user and the provider, as the 403 does.
func TestSignOutPageNamesUserAndProvider(t *testing.T) {
	e := newEnv(t)
	e.login("alpha", "bob", "/")
	page := body(e.get(e.broker.URL + "/oauth2/sign_out"))
	for _, want := range []string{`<strong id="who-user">bob</strong>`, `id="who-provider">with Alpha</span>`, `id="sign-out">Sign out</button>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the sign-out page lacks %q:\n%s", want, page)
		}
	}
}

// A request refused before its host is checked gets JSON too when it asks for it (and
// plain text, no page, otherwise).
func TestEarlyErrorsJSON(t *testing.T) {
	e := newEnv(t)
	resp := e.request(nil, http.MethodGet, "/oauth2/sign_in%00x", map[string]string{"Accept": "application/json"})
	var b struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(body(resp)), &b) != nil || b.Error != "bad_request" || b.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("%d %s", resp.StatusCode, body(resp))
	}
	if resp := e.request(nil, http.MethodGet, "/oauth2/sign_in%00x", nil); resp.StatusCode != http.StatusBadRequest ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("browser: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
