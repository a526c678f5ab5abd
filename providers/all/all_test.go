package all_test

import (
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
)

// TestTypes: every type the documentation names, in the order an unknown
// type's error lists them.
func TestTypes(t *testing.T) {
	const want = "oidc, oauth2, local, ldap, entra, github, gitlab, google, keycloak, okta"
	if got := strings.Join(all.Types().Names(), ", "); got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
	err := all.Types().Validate(providers.Config{ID: "x", Type: "githb", ClientID: "c", ClientSecret: "s"})
	if err == nil || !strings.Contains(err.Error(), `type: "githb" is not one of `+want) {
		t.Errorf("unknown type: %v", err)
	}
}
