package broker

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
)

// TestIdPErrorPagesNeverLogged: an IdP that answers discovery, the token
// endpoint, its JWKS or userinfo with an error page (HTML, or something
// that only claims to be JSON) gets its status, media type and size into
// the log, never its body: the marker in the page reaches neither the log
// nor the page the browser gets. zitadel and x/oauth2 quote such a body in
// their errors, which the broker logs on every anonymous start while
// discovery fails.
func TestIdPErrorPagesNeverLogged(t *testing.T) {
	const marker = "idp-page-marker-5c81"
	html := "<!DOCTYPE html><html><body><h1>Internal Server Error</h1><p>" + marker + "</p>" +
		strings.Repeat("<!-- padding -->", 32<<10) + "</body></html>"
	page := func(status int, contentType, body string) hostileidp.ErrorPage {
		return hostileidp.ErrorPage{Status: status, ContentType: contentType, Body: body}
	}
	const discovery = "/.well-known/openid-configuration"
	htmlSize := fmt.Sprintf("text/html, %d bytes", len(html))
	cases := []struct {
		name, path string
		page       hostileidp.ErrorPage
		login      bool // the page is met at the callback, not at the start
		want       string
	}{
		{"discovery: 500 HTML", discovery, page(http.StatusInternalServerError, "text/html; charset=utf-8", html), false, htmlSize},
		{"discovery: 200 HTML", discovery, page(http.StatusOK, "text/html", html), false, htmlSize},
		{"discovery: 200 HTML said to be JSON", discovery, page(http.StatusOK, "application/json", html), false, "application/json"},
		{"discovery: 200 JSON of the wrong shape", discovery, page(http.StatusOK, "application/json", `{"issuer":5,"note":"`+marker+`"}`), false, "application/json"},
		{"discovery: 404 JSON that is no OAuth error", discovery, page(http.StatusNotFound, "application/json", `{"message":"`+marker+`"}`), false, "application/json"},
		{"token: 500 HTML", "/oauth/token", page(http.StatusInternalServerError, "text/html", html), true, htmlSize},
		{"token: 400 JSON that is no OAuth error", "/oauth/token", page(http.StatusBadRequest, "application/json", `{"error":{"detail":"`+marker+`"}}`), true, "application/json"},
		{"token: 200 HTML", "/oauth/token", page(http.StatusOK, "text/html", html), true, ""},
		{"JWKS: 500 HTML", "/keys", page(http.StatusInternalServerError, "text/html", html), true, htmlSize},
		{"JWKS: 200 JSON of the wrong shape", "/keys", page(http.StatusOK, "application/json", `{"keys":"`+marker+`"}`), true, "application/json"},
		{"userinfo: 500 HTML", "/userinfo", page(http.StatusInternalServerError, "text/html", html), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withUserinfo("alpha", "always")) // the userinfo case
			e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.ErrorPages = map[string]hostileidp.ErrorPage{c.path: c.page} })
			var shown []string
			if c.login {
				cb := e.startLogin(e.client, "alpha", "alice", "/")
				resp := e.get(cb.String())
				if resp.StatusCode < 400 {
					t.Fatalf("the callback succeeded: %d", resp.StatusCode)
				}
				shown = append(shown, body(resp))
			} else {
				for range 2 {
					resp := e.get(e.broker.URL + "/oauth2/start/alpha")
					if resp.StatusCode < 400 {
						t.Fatalf("the start succeeded: %d", resp.StatusCode)
					}
					shown = append(shown, body(resp))
				}
			}
			logs := e.logs.String()
			if strings.Contains(logs, marker) {
				t.Errorf("the IdP's page reached the log:\n%s", logs[:min(len(logs), 1500)])
			}
			for _, p := range shown {
				if strings.Contains(p, marker) {
					t.Errorf("the IdP's page reached the browser:\n%s", p[:min(len(p), 2000)])
				}
			}
			if c.want != "" && !strings.Contains(logs, "IdP response body not shown: "+c.want) {
				t.Errorf("the log does not say what the IdP sent (%s):\n%s", c.want, logs[:min(len(logs), 1500)])
			}
		})
	}
}
