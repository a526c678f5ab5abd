package broker

import (
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestBasicAuthPathsChecked: each Basic path of a password provider (local
// or ldap) is a clean path outside the broker's own /oauth2/ routes; each
// mistake names its provider and index, and a good path passes.
func TestBasicAuthPathsChecked(t *testing.T) {
	local := localProvider(t, "api/", "/a/../b", "/oauth2/auth", "/x?y", "/ok/")
	ldap := providers.Config{ID: "corp", Type: providers.TypeLDAP, BasicAuthPaths: []string{"/oauth2"},
		LDAP: &providers.LDAPConfig{URLs: []string{"ldaps://ldap.example.org"}, BindDN: "cn=broker,dc=example,dc=org",
			BindPassword: "pw", UserSearch: providers.LDAPUserSearch{BaseDN: "dc=example,dc=org"}}}
	err := Config{Providers: []providers.Config{local, ldap}}.Validate()
	for _, want := range []string{
		`providers[0].basic_auth_paths[0]: "api/" must start with /`,
		`providers[0].basic_auth_paths[1]: "/a/../b" must be a clean path (no ., .. or //)`,
		`providers[0].basic_auth_paths[2]: "/oauth2/auth" must not be under /oauth2/, the broker's own routes`,
		`providers[0].basic_auth_paths[3]: "/x?y" must be a path without query, fragment, spaces or control characters`,
		`providers[1].basic_auth_paths[0]: "/oauth2" must not be under /oauth2/`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "basic_auth_paths[4]") {
		t.Errorf("a good path refused: %v", err)
	}
}
