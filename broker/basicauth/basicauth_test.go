package basicauth

import (
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestRoutesFor: the most specific Basic path wins, a subtree matches below
// it only, and the request path is cleaned before it is matched.
func TestRoutesFor(t *testing.T) {
	rs := RoutesOf([]providers.Config{
		{ID: "a", Type: providers.TypeLocal, BasicAuthPaths: []string{"/api/", "/metrics"}},
		{ID: "b", Type: providers.TypeLocal, BasicAuthPaths: []string{"/api/admin/"}},
		{ID: "c", Type: providers.TypeOIDC, BasicAuthPaths: []string{"/x/"}},
	})
	for p, want := range map[string]string{
		"/api/v1": "a", "/api/admin/users": "b", "/api/x/../admin/": "b", "/metrics": "a",
		"/metrics/x": "", "/api": "", "/x/y": "", "": "", "/apix": "",
	} {
		r, ok := rs.For(p)
		if r.Provider != want || ok != (want != "") {
			t.Errorf("For(%q) = %q, %v; want %q", p, r.Provider, ok, want)
		}
	}
}
