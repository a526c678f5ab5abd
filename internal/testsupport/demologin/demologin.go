// Package demologin signs a user in at the demo IdP (package demo) the way
// a browser does, for the tests of the broker and the end-to-end tests:
// the one walk through the IdP's login form that they all share.
package demologin

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/oidc-broker/oidc-broker/demo"
)

// Do makes one request, without following redirects; form is nil for a
// GET and the body of a POST otherwise.
type Do func(method, rawURL string, form url.Values) *http.Response

// Walk follows the redirects from at, posting the demo IdP's login form as
// user (with demo.DemoPassword) when it comes to it, until end says a URL
// is where the walk ends (the broker's callback), which it returns
// unvisited. Any other answer than a redirect fails tb; so do more than
// ten steps.
func Walk(tb testing.TB, at *url.URL, user string, do Do, end func(*url.URL) bool) *url.URL {
	tb.Helper()
	loc := at
	for range 10 {
		if end(loc) {
			return loc
		}
		var resp *http.Response
		if loc.Path == "/login" {
			resp = do(http.MethodPost, loc.Scheme+"://"+loc.Host+"/login", url.Values{
				"id": {loc.Query().Get("authRequestID")}, "username": {user}, "password": {demo.DemoPassword}})
		} else {
			resp = do(http.MethodGet, loc.String(), nil)
		}
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			tb.Fatalf("demo login at %s: status %d\n%s", loc, resp.StatusCode, b)
		}
		next, err := loc.Parse(resp.Header.Get("Location"))
		if err != nil {
			tb.Fatalf("demo login at %s: Location: %v", loc, err)
		}
		loc = next
	}
	tb.Fatal("demo login: too many redirects")
	return nil
}
