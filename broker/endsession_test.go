package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oidc-broker/oidc-broker/demo"
)

// manyGroupsUser is an account whose ID token carries 150 groups: about
// 7 KB, far too long for a URL.
func manyGroupsUser(realm string) demo.User {
	u := demo.User{ID: realm + "-dora", Username: "dora", Password: demo.DemoPassword, Name: "Dora Dunn",
		Email: "dora@" + realm + ".example", EmailVerified: true}
	for i := range 150 {
		u.Groups = append(u.Groups, fmt.Sprintf("cn=app-%03d-readers,ou=groups", i))
	}
	return u
}

// idTokenTap records the ID tokens the IdP id issues. Call it before the
// first request to that IdP.
func idTokenTap(e *env, id string) func() string {
	var mu sync.Mutex
	var last string
	interceptIdP(e, id, "/oauth/token", func(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
		var answer struct {
			IDToken string `json:"id_token"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		mu.Lock()
		last = answer.IDToken
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

var (
	formTag     = regexp.MustCompile(`<form method="post" action="([^"]*)" id="end-session">`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	inlineJS    = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
)

// TestSignOutWithALargeIDToken: RP-Initiated Logout sends id_token_hint
// whatever the ID token's size. An ID token of 150 groups makes the
// end-session URL too long, so the sign-out answers with a page that posts
// the request to the end_session_endpoint (its one inline script allowed
// by its hash, no Referer, not cached), and the IdP accepts the POST and
// sends the browser back. A small ID token still goes by a 303.
func TestSignOutWithALargeIDToken(t *testing.T) {
	t.Run("150 groups: a form POST", func(t *testing.T) {
		e := newEnv(t, withUsers("alpha", manyGroupsUser("alpha")))
		issued := idTokenTap(e, "alpha")
		e.login("alpha", "dora", "/")
		idToken := issued()
		if len(idToken) < 6000 {
			t.Fatalf("the ID token has %d bytes: want the large one (over 6 KB) this test is about", len(idToken))
		}
		resp := e.signOut(e.client, "/bye")
		page := body(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-out: %d %q, want 200 and the page that posts to the IdP", resp.StatusCode, resp.Header.Get("Location"))
		}
		if e.signedIn(e.client) {
			t.Fatal("still signed in at the broker while at the IdP")
		}
		h := resp.Header
		if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("headers: %v", h)
		}
		m := formTag.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no form posting to the IdP:\n%s", page)
		}
		if action := html.UnescapeString(m[1]); action != e.idps["alpha"].srv.URL+"/end_session" {
			t.Errorf("the form posts to %q, want the end_session_endpoint", action)
		}
		fields := url.Values{}
		for _, f := range hiddenInput.FindAllStringSubmatch(page, -1) {
			fields.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
		}
		if fields.Get("id_token_hint") != idToken || fields.Get("client_id") != "broker-alpha" || fields.Get("state") == "" ||
			fields.Get("post_logout_redirect_uri") != e.broker.URL+"/oauth2/signed_out/alpha" || len(fields) != 4 {
			t.Errorf("the form's fields (id_token_hint the session's ID token: %v): %v",
				fields.Get("id_token_hint") == idToken, slices.Sorted(maps.Keys(fields)))
		}
		if n := strings.Count(page, idToken); n != 1 {
			t.Errorf("the ID token is on the page %d times, want once (the form)", n)
		}
		// The CSP allows exactly the page's inline script, by its hash.
		scripts := inlineJS.FindAllStringSubmatch(page, -1)
		if len(scripts) != 1 || !strings.Contains(scripts[0][1], `getElementById("end-session").submit()`) {
			t.Fatalf("want one inline script that submits the form: %q", scripts)
		}
		sum := sha256.Sum256([]byte(scripts[0][1]))
		csp := h.Get("Content-Security-Policy")
		directives := strings.Split(csp, "; ")
		want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !slices.Contains(directives, want) || !slices.Contains(directives, "default-src 'none'") ||
			!slices.Contains(directives, "form-action 'self' https: http:") || strings.Count(csp, "script-src") != 1 {
			t.Errorf("CSP %q, want %q and the pages' own", csp, want)
		}
		if !strings.Contains(page, `id="continue"`) {
			t.Error("no Continue button for browsers without JavaScript")
		}

		// The browser posts the form: the demo IdP checks the hint, ends its
		// session and sends the browser back with the state, on to rd.
		resp = e.do(e.client, http.MethodPost, html.UnescapeString(m[1]), fields)
		back, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), e.broker.URL+"/oauth2/signed_out/alpha?") ||
			back.Query().Get("state") != fields.Get("state") {
			t.Fatalf("the IdP answered the POST with %d %s: %s", resp.StatusCode, back, body(resp))
		}
		if resp := e.get(back.String()); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
			t.Fatalf("back from the IdP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if logs := e.logs.String(); strings.Contains(logs, idToken[:40]) {
			t.Error("the ID token is in the log")
		}
	})

	t.Run("2 groups: a 303", func(t *testing.T) {
		e := newEnv(t)
		issued := idTokenTap(e, "alpha")
		e.login("alpha", "alice", "/")
		resp := e.signOut(e.client, "/bye")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), e.idps["alpha"].srv.URL+"/end_session?") ||
			loc.Query().Get("id_token_hint") != issued() || issued() == "" {
			t.Fatalf("sign-out: %d %s", resp.StatusCode, loc)
		}
	})
}
