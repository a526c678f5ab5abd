package ldap

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/tempfile"
	"github.com/oidc-broker/oidc-broker/providers"
)

// validLDAP is a complete configuration that needs no directory.
func validLDAP() providers.Config {
	return providers.Config{ID: "corp", Type: providers.TypeLDAP, LDAP: &providers.LDAPConfig{
		URLs:         []string{"ldaps://ldap.example.org"},
		BindDN:       "cn=broker,ou=services,dc=example,dc=org",
		BindPassword: "s3cret-bind-password",
		UserSearch:   providers.LDAPUserSearch{BaseDN: "ou=people,dc=example,dc=org"},
	}}
}

// TestLDAPConfigValidate: each mistake is an error naming its field, and
// every mistake of a configuration is reported at once.
func TestLDAPConfigValidate(t *testing.T) {
	if err := validate(validLDAP()); err != nil {
		t.Fatalf("the valid configuration: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*providers.Config)
		want string // "" = valid
	}{
		{"no ldap block", func(c *providers.Config) { c.LDAP = nil }, "ldap: is required for a provider of type ldap"},
		{"unknown preset", func(c *providers.Config) { c.LDAP.Preset = "novell" }, `ldap.preset: "novell" is not one of openldap, active_directory`},
		{"no URL", func(c *providers.Config) { c.LDAP.URLs = nil }, "ldap.urls: is required"},
		{"http URL", func(c *providers.Config) { c.LDAP.URLs = []string{"https://ldap.example.org"} }, "ldap.urls[0]: \"https://ldap.example.org\" must be an ldaps:// or ldap:// URL"},
		{"URL with a DN", func(c *providers.Config) { c.LDAP.URLs = []string{"ldaps://ldap.example.org/dc=example,dc=org"} }, "must be scheme://host[:port] only"},
		{"URL with a bad port", func(c *providers.Config) { c.LDAP.URLs = []string{"ldaps://ldap.example.org:x"} }, "ldap.urls[0]"},
		{"plain LDAP over the network", func(c *providers.Config) { c.LDAP.URLs = []string{"ldaps://a.example.org", "ldap://ldap.example.org"} },
			"ldap.urls[1]: \"ldap://ldap.example.org\" would send passwords in clear text"},
		{"plain LDAP with insecure_no_tls", func(c *providers.Config) {
			c.LDAP.URLs, c.LDAP.InsecureNoTLS = []string{"ldap://ldap.example.org"}, true
		}, ""},
		{"plain LDAP on loopback", func(c *providers.Config) { c.LDAP.URLs = []string{"ldap://127.0.0.1:3389", "ldap://localhost"} }, ""},
		{"StartTLS", func(c *providers.Config) { c.LDAP.URLs, c.LDAP.StartTLS = []string{"ldap://ldap.example.org"}, true }, ""},
		{"StartTLS on LDAPS", func(c *providers.Config) { c.LDAP.StartTLS = true }, "is TLS already: start_tls is for ldap:// URLs"},
		{"missing CA file", func(c *providers.Config) { c.LDAP.CAFile = filepath.Join(t.TempDir(), "nope.pem") }, "ldap.ca_file: cannot read"},
		{"CA file without a certificate", func(c *providers.Config) { c.LDAP.CAFile = tempfile.Write(t, "ca.pem", "not PEM") }, "ldap.ca_file: \"" + "/"},
		{"server name with a port", func(c *providers.Config) { c.LDAP.ServerName = "ldap.example.org:636" }, "ldap.server_name"},
		{"negative timeouts", func(c *providers.Config) { c.LDAP.DialTimeout, c.LDAP.Timeout = -time.Second, -time.Second }, "ldap.dial_timeout: must not be negative"},
		{"too many connections", func(c *providers.Config) { c.LDAP.MaxConnections = 65 }, "ldap.max_connections: 65 is not between 1 and 64"},
		{"no bind DN", func(c *providers.Config) { c.LDAP.BindDN = "" }, "ldap.bind_dn: is required"},
		{"bind DN not a DN", func(c *providers.Config) { c.LDAP.BindDN = "broker" }, "ldap.bind_dn: \"broker\" is not a DN"},
		{"a UPN outside Active Directory", func(c *providers.Config) { c.LDAP.BindDN = "broker@corp.example.com" }, "ldap.bind_dn: \"broker@corp.example.com\" is not a DN"},
		{"a UPN on Active Directory", func(c *providers.Config) {
			c.LDAP.Preset, c.LDAP.BindDN = providers.PresetActiveDirectory, "broker@corp.example.com"
		}, ""},
		{"a down-level name on Active Directory", func(c *providers.Config) {
			c.LDAP.Preset, c.LDAP.BindDN = providers.PresetActiveDirectory, `CORP\broker`
		}, ""},
		{"no bind password", func(c *providers.Config) { c.LDAP.BindPassword = "" }, "ldap.bind_password: is required (or bind_password_file): an empty password would be an unauthenticated bind"},
		{"password and file", func(c *providers.Config) { c.LDAP.BindPasswordFile = tempfile.Write(t, "pw", "x\n") }, "ldap.bind_password_file: set bind_password or bind_password_file, not both"},
		{"password file", func(c *providers.Config) {
			c.LDAP.BindPassword, c.LDAP.BindPasswordFile = "", tempfile.Write(t, "pw", "x\n")
		}, ""},
		{"empty password file", func(c *providers.Config) {
			c.LDAP.BindPassword, c.LDAP.BindPasswordFile = "", tempfile.Write(t, "pw", "\n")
		}, "ldap.bind_password_file: \""},
		{"no base DN", func(c *providers.Config) { c.LDAP.UserSearch.BaseDN = "" }, "ldap.user_search.base_dn: is required"},
		{"bad scope", func(c *providers.Config) { c.LDAP.UserSearch.Scope = "base" }, `ldap.user_search.scope: "base" is not one of sub, one`},
		{"filter without parentheses", func(c *providers.Config) { c.LDAP.UserSearch.Filter = "objectClass=person" }, "ldap.user_search.filter: \"objectClass=person\" must be one filter in parentheses"},
		{"two filters", func(c *providers.Config) { c.LDAP.UserSearch.Filter = "(a=b)(c=d)" }, "ldap.user_search.filter: \"(a=b)(c=d)\" is not a valid filter"},
		{"bad login attribute", func(c *providers.Config) { c.LDAP.UserSearch.LoginAttributes = []string{"uid", "mail)(x"} }, "ldap.user_search.login_attributes[1]: \"mail)(x\" is not an attribute name"},
		{"subject is the username", func(c *providers.Config) { c.LDAP.Attributes.Subject = "uid" }, `ldap.attributes.subject: "uid" is a username or the DN`},
		{"subject is a login attribute", func(c *providers.Config) {
			c.LDAP.Attributes.Subject, c.LDAP.UserSearch.LoginAttributes = "mail", []string{"uid", "mail"}
		}, `ldap.attributes.subject: "mail" is a username`},
		{"numeric OID attribute", func(c *providers.Config) { c.LDAP.Attributes.Subject = "1.3.6.1.1.16.4" }, ""},
		{"unknown group source", func(c *providers.Config) { c.LDAP.Groups.Source = "magic" }, `ldap.groups.source: "magic" is not one of member_of, search, none`},
		{"search without base", func(c *providers.Config) { c.LDAP.Groups.Source = "search" }, "ldap.groups.base_dn: is required"},
		{"search fields with member_of", func(c *providers.Config) {
			c.LDAP.Groups.BaseDN, c.LDAP.Groups.Nested = "ou=groups,dc=example,dc=org", "walk"
		},
			"ldap.groups.base_dn: is only used with groups.source search"},
		{"member_of attribute with search", func(c *providers.Config) {
			c.LDAP.Groups = providers.LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", MemberOfAttribute: "memberOf"}
		}, "ldap.groups.member_of_attribute: is only used with groups.source member_of"},
		{"nested posix groups", func(c *providers.Config) {
			c.LDAP.Groups = providers.LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", MemberAttribute: "memberUid", MemberValue: "username", Nested: "walk"}
		}, "ldap.groups.nested: needs member_value dn"},
		{"unknown nesting", func(c *providers.Config) {
			c.LDAP.Groups = providers.LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", Nested: "deep"}
		},
			`ldap.groups.nested: "deep" is not one of none, walk, in_chain`},
		{"unknown relay", func(c *providers.Config) { c.LDAP.Groups.Relay = "guid" }, `ldap.groups.relay: "guid" is not one of name, dn`},
		{"bad group filter", func(c *providers.Config) {
			c.LDAP.Groups = providers.LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", Filter: "(objectClass=group"}
		}, "ldap.groups.filter"},
		{"an OpenID setting", func(c *providers.Config) { c.ClientID = "x" }, "client_id: is not used by providers of type ldap"},
		{"a claims setting", func(c *providers.Config) { c.Claims.Email = "mail" }, "claims.email: is not used by providers of type ldap"},
		{"a local setting", func(c *providers.Config) { c.HtpasswdFile = "users.htpasswd" }, "htpasswd_file: is only used by providers of type local"},
		{"Basic paths", func(c *providers.Config) { c.BasicAuthPaths = []string{"/api/"} }, ""},
		{"prefix and static groups", func(c *providers.Config) {
			c.Claims = providers.ClaimsConfig{GroupPrefix: "corp:", StaticGroups: []string{"staff"}}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validLDAP()
			l := *c.LDAP
			c.LDAP = &l
			tc.edit(&c)
			err := validate(c)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret-bind-password"):
				t.Errorf("the error quotes the bind password: %v", err)
			}
		})
	}

	t.Run("every problem at once", func(t *testing.T) {
		c := providers.Config{ID: "corp", Type: providers.TypeLDAP, ClientSecret: "x", LDAP: &providers.LDAPConfig{
			URLs: []string{"ldap://ldap.example.org"}, UserSearch: providers.LDAPUserSearch{Scope: "all"}, Groups: providers.LDAPGroups{Source: "search"}}}
		errs := providers.Flatten(validate(c))
		for _, want := range []string{"client_secret:", "ldap.urls[0]:", "ldap.bind_dn:", "ldap.bind_password:", "ldap.user_search.base_dn:",
			"ldap.user_search.scope:", "ldap.groups.base_dn:"} {
			if !strings.Contains(errors.Join(errs...).Error(), want) {
				t.Errorf("no problem %q among %d: %v", want, len(errs), errs)
			}
		}
	})
}

// TestLDAPPresets: the presets' values, and a field set in the
// configuration wins over its preset.
func TestLDAPPresets(t *testing.T) {
	c := validLDAP()
	c.LDAP.Preset = providers.PresetActiveDirectory
	c.LDAP.Attributes.Name = "cn"
	s, errs := load(*c.LDAP)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if s.Attributes.Subject != "objectGUID" || s.Attributes.Username != "sAMAccountName" || s.Attributes.Name != "cn" ||
		strings.Join(s.UserSearch.LoginAttributes, ",") != "sAMAccountName,userPrincipalName" ||
		!strings.Contains(s.userFilter, "userAccountControl:1.2.840.113556.1.4.803:=2") || s.Groups.Filter != "(objectClass=group)" {
		t.Errorf("active_directory settings = %+v", s.LDAPConfig)
	}
	s, _ = load(*validLDAP().LDAP)
	if s.Preset != providers.PresetOpenLDAP || s.Attributes.Subject != "entryUUID" || s.UserSearch.LoginAttributes[0] != "uid" || s.userFilter != "" ||
		s.Groups.Source != groupsMemberOf || s.Timeout != defaultLDAPTimeout || s.MaxConnections != defaultLDAPConns {
		t.Errorf("openldap settings = %+v", s.LDAPConfig)
	}
}
