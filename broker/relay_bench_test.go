package broker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/providers"
)

// BenchmarkRelayIdentity is the header relay alone: relayIdentity writing a
// signed-in user's identity into a header map, as on every allowed
// forward-auth check and every proxied request.
//
//   - plain: ASCII values, three groups (nothing to encode);
//   - encoded: a non-ASCII username and groups with '%', ',' and
//     non-ASCII letters (percent-encoding);
//   - groups-50: fifty plain group names, as a large Keycloak realm sends;
//   - groups-50-dn: fifty LDAP distinguished names (AD groups through
//     Keycloak's LDAP federation), whose commas are percent-encoded;
//   - assertion: plain with the signed assertion on (ES256), after the first
//     signature a cache hit per relay (BenchmarkAssertionSign is a miss).
func BenchmarkRelayIdentity(b *testing.B) {
	plain := providers.Identity{Provider: "kc", Subject: "248289761001", Email: "jane@example.com", EmailVerified: true,
		Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops", "admins"}, AuthTime: time.Now()}
	encoded := plain
	encoded.PreferredUsername = "jürgen.müller"
	encoded.Groups = []string{"Entwicklung & Betrieb", "100% remote", "a,b", "Zürich"}
	many, dn := plain, plain
	many.Groups, dn.Groups = make([]string, 50), make([]string, 50)
	for i := range many.Groups {
		many.Groups[i] = fmt.Sprintf("engineering-team-%02d", i)
		dn.Groups[i] = fmt.Sprintf("CN=Group %02d,OU=Groups,DC=example,DC=com", i)
	}
	for _, c := range []struct {
		name      string
		id        providers.Identity
		assertion bool
		want      string // HeaderGroups
	}{
		{"plain", plain, false, "staff,ops,admins"},
		{"encoded", encoded, false, "Entwicklung & Betrieb,100%25 remote,a%2Cb,Z%C3%BCrich"},
		{"groups-50", many, false, ""},
		{"groups-50-dn", dn, false, ""},
		{"assertion", plain, true, "staff,ops,admins"},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv, _ := benchServer(b, func(cfg *Config) { cfg.Assertion.Enabled = c.assertion })
			r := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
			h := http.Header{}
			srv.relayIdentity(h, r, c.id, "") // the assertion's first signature
			check := func() {
				if h.Get(HeaderUser) != c.id.User() || (c.want != "" && h.Get(HeaderGroups) != c.want) ||
					(h.Get(assertion.DefaultHeader) != "") != c.assertion {
					b.Fatalf("relayed %v", h)
				}
			}
			check()
			b.ReportAllocs()
			for b.Loop() {
				clear(h)
				srv.relayIdentity(h, r, c.id, "")
			}
			check()
		})
	}
}
