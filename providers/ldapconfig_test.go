package providers

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validLDAP is a complete configuration that needs no directory.
func validLDAP() Config {
	return Config{ID: "corp", Type: TypeLDAP, LDAP: &LDAPConfig{
		URLs:         []string{"ldaps://ldap.example.org"},
		BindDN:       "cn=broker,ou=services,dc=example,dc=org",
		BindPassword: "s3cret-bind-password",
		UserSearch:   LDAPUserSearch{BaseDN: "ou=people,dc=example,dc=org"},
	}}
}

// TestLDAPConfigValidate: each mistake is an error naming its field, and
// every mistake of a configuration is reported at once.
func TestLDAPConfigValidate(t *testing.T) {
	if err := validLDAP().validate(); err != nil {
		t.Fatalf("the valid configuration: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"no ldap block", func(c *Config) { c.LDAP = nil }, "ldap: is required for a provider of type ldap"},
		{"unknown preset", func(c *Config) { c.LDAP.Preset = "novell" }, `ldap.preset: "novell" is not one of openldap, active_directory`},
		{"no URL", func(c *Config) { c.LDAP.URLs = nil }, "ldap.urls: is required"},
		{"http URL", func(c *Config) { c.LDAP.URLs = []string{"https://ldap.example.org"} }, "ldap.urls[0]: \"https://ldap.example.org\" must be an ldaps:// or ldap:// URL"},
		{"URL with a DN", func(c *Config) { c.LDAP.URLs = []string{"ldaps://ldap.example.org/dc=example,dc=org"} }, "must be scheme://host[:port] only"},
		{"URL with a bad port", func(c *Config) { c.LDAP.URLs = []string{"ldaps://ldap.example.org:x"} }, "ldap.urls[0]"},
		{"plain LDAP over the network", func(c *Config) { c.LDAP.URLs = []string{"ldaps://a.example.org", "ldap://ldap.example.org"} },
			"ldap.urls[1]: \"ldap://ldap.example.org\" would send passwords in clear text"},
		{"plain LDAP with insecure_no_tls", func(c *Config) { c.LDAP.URLs, c.LDAP.InsecureNoTLS = []string{"ldap://ldap.example.org"}, true }, ""},
		{"plain LDAP on loopback", func(c *Config) { c.LDAP.URLs = []string{"ldap://127.0.0.1:3389", "ldap://localhost"} }, ""},
		{"StartTLS", func(c *Config) { c.LDAP.URLs, c.LDAP.StartTLS = []string{"ldap://ldap.example.org"}, true }, ""},
		{"StartTLS on LDAPS", func(c *Config) { c.LDAP.StartTLS = true }, "is TLS already: start_tls is for ldap:// URLs"},
		{"missing CA file", func(c *Config) { c.LDAP.CAFile = filepath.Join(t.TempDir(), "nope.pem") }, "ldap.ca_file: cannot read"},
		{"CA file without a certificate", func(c *Config) { c.LDAP.CAFile = writeFile(t, "ca.pem", "not PEM") }, "ldap.ca_file: \"" + "/"},
		{"server name with a port", func(c *Config) { c.LDAP.ServerName = "ldap.example.org:636" }, "ldap.server_name"},
		{"negative timeouts", func(c *Config) { c.LDAP.DialTimeout, c.LDAP.Timeout = -time.Second, -time.Second }, "ldap.dial_timeout: must not be negative"},
		{"too many connections", func(c *Config) { c.LDAP.MaxConnections = 65 }, "ldap.max_connections: 65 is not between 1 and 64"},
		{"no bind DN", func(c *Config) { c.LDAP.BindDN = "" }, "ldap.bind_dn: is required"},
		{"bind DN not a DN", func(c *Config) { c.LDAP.BindDN = "broker" }, "ldap.bind_dn: \"broker\" is not a DN"},
		{"a UPN outside Active Directory", func(c *Config) { c.LDAP.BindDN = "broker@corp.example.com" }, "ldap.bind_dn: \"broker@corp.example.com\" is not a DN"},
		{"a UPN on Active Directory", func(c *Config) { c.LDAP.Preset, c.LDAP.BindDN = PresetActiveDirectory, "broker@corp.example.com" }, ""},
		{"a down-level name on Active Directory", func(c *Config) { c.LDAP.Preset, c.LDAP.BindDN = PresetActiveDirectory, `CORP\broker` }, ""},
		{"no bind password", func(c *Config) { c.LDAP.BindPassword = "" }, "ldap.bind_password: is required (or bind_password_file): an empty password would be an unauthenticated bind"},
		{"password and file", func(c *Config) { c.LDAP.BindPasswordFile = writeFile(t, "pw", "x\n") }, "ldap.bind_password_file: set bind_password or bind_password_file, not both"},
		{"password file", func(c *Config) { c.LDAP.BindPassword, c.LDAP.BindPasswordFile = "", writeFile(t, "pw", "x\n") }, ""},
		{"empty password file", func(c *Config) { c.LDAP.BindPassword, c.LDAP.BindPasswordFile = "", writeFile(t, "pw", "\n") }, "ldap.bind_password_file: \""},
		{"no base DN", func(c *Config) { c.LDAP.UserSearch.BaseDN = "" }, "ldap.user_search.base_dn: is required"},
		{"bad scope", func(c *Config) { c.LDAP.UserSearch.Scope = "base" }, `ldap.user_search.scope: "base" is not one of sub, one`},
		{"filter without parentheses", func(c *Config) { c.LDAP.UserSearch.Filter = "objectClass=person" }, "ldap.user_search.filter: \"objectClass=person\" must be one filter in parentheses"},
		{"two filters", func(c *Config) { c.LDAP.UserSearch.Filter = "(a=b)(c=d)" }, "ldap.user_search.filter: \"(a=b)(c=d)\" is not a valid filter"},
		{"bad login attribute", func(c *Config) { c.LDAP.UserSearch.LoginAttributes = []string{"uid", "mail)(x"} }, "ldap.user_search.login_attributes[1]: \"mail)(x\" is not an attribute name"},
		{"subject is the username", func(c *Config) { c.LDAP.Attributes.Subject = "uid" }, `ldap.attributes.subject: "uid" is a username or the DN`},
		{"subject is a login attribute", func(c *Config) {
			c.LDAP.Attributes.Subject, c.LDAP.UserSearch.LoginAttributes = "mail", []string{"uid", "mail"}
		}, `ldap.attributes.subject: "mail" is a username`},
		{"numeric OID attribute", func(c *Config) { c.LDAP.Attributes.Subject = "1.3.6.1.1.16.4" }, ""},
		{"unknown group source", func(c *Config) { c.LDAP.Groups.Source = "magic" }, `ldap.groups.source: "magic" is not one of member_of, search, none`},
		{"search without base", func(c *Config) { c.LDAP.Groups.Source = "search" }, "ldap.groups.base_dn: is required"},
		{"search fields with member_of", func(c *Config) { c.LDAP.Groups.BaseDN, c.LDAP.Groups.Nested = "ou=groups,dc=example,dc=org", "walk" },
			"ldap.groups.base_dn: is only used with groups.source search"},
		{"member_of attribute with search", func(c *Config) {
			c.LDAP.Groups = LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", MemberOfAttribute: "memberOf"}
		}, "ldap.groups.member_of_attribute: is only used with groups.source member_of"},
		{"nested posix groups", func(c *Config) {
			c.LDAP.Groups = LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", MemberAttribute: "memberUid", MemberValue: "username", Nested: "walk"}
		}, "ldap.groups.nested: needs member_value dn"},
		{"unknown nesting", func(c *Config) {
			c.LDAP.Groups = LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", Nested: "deep"}
		},
			`ldap.groups.nested: "deep" is not one of none, walk, in_chain`},
		{"unknown relay", func(c *Config) { c.LDAP.Groups.Relay = "guid" }, `ldap.groups.relay: "guid" is not one of name, dn`},
		{"bad group filter", func(c *Config) {
			c.LDAP.Groups = LDAPGroups{Source: "search", BaseDN: "ou=g,dc=example,dc=org", Filter: "(objectClass=group"}
		}, "ldap.groups.filter"},
		{"an OpenID setting", func(c *Config) { c.ClientID = "x" }, "client_id: is not used by providers of type ldap"},
		{"a claims setting", func(c *Config) { c.Claims.Email = "mail" }, "claims.email: is not used by providers of type ldap"},
		{"a local setting", func(c *Config) { c.HtpasswdFile = "users.htpasswd" }, "htpasswd_file: is only used by providers of type local"},
		{"Basic paths", func(c *Config) { c.BasicAuthPaths = []string{"/api/"} }, ""},
		{"a bad Basic path", func(c *Config) { c.BasicAuthPaths = []string{"/oauth2/x"} }, "basic_auth_paths[0]"},
		{"prefix and static groups", func(c *Config) { c.Claims = ClaimsConfig{GroupPrefix: "corp:", StaticGroups: []string{"staff"}} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validLDAP()
			l := *c.LDAP
			c.LDAP = &l
			tc.edit(&c)
			err := c.validate()
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
		c := Config{ID: "corp", Type: TypeLDAP, ClientSecret: "x", LDAP: &LDAPConfig{
			URLs: []string{"ldap://ldap.example.org"}, UserSearch: LDAPUserSearch{Scope: "all"}, Groups: LDAPGroups{Source: "search"}}}
		errs := Flatten(c.validate())
		for _, want := range []string{"client_secret:", "ldap.urls[0]:", "ldap.bind_dn:", "ldap.bind_password:", "ldap.user_search.base_dn:",
			"ldap.user_search.scope:", "ldap.groups.base_dn:"} {
			if !strings.Contains(errors.Join(errs...).Error(), want) {
				t.Errorf("no problem %q among %d: %v", want, len(errs), errs)
			}
		}
	})
	t.Run("an ldap block on another type", func(t *testing.T) {
		c := Config{ID: "g", Issuer: "https://accounts.google.com", ClientID: "x", ClientSecret: "y", LDAP: &LDAPConfig{}}
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), "ldap: is only used by providers of type ldap") {
			t.Errorf("err = %v", err)
		}
		c = Config{ID: "l", Type: TypeLocal, HtpasswdFile: writeFile(t, "h", "alice:"+hashOf(t, "pw")+"\n"), LDAP: &LDAPConfig{}}
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), "ldap: is only used by providers of type ldap") {
			t.Errorf("local: err = %v", err)
		}
	})
}

// TestLDAPPresets: the presets' values, and a field set in the
// configuration wins over its preset.
func TestLDAPPresets(t *testing.T) {
	c := validLDAP()
	c.LDAP.Preset = PresetActiveDirectory
	c.LDAP.Attributes.Name = "cn"
	s, errs := c.LDAP.settings()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if s.Attributes.Subject != "objectGUID" || s.Attributes.Username != "sAMAccountName" || s.Attributes.Name != "cn" ||
		strings.Join(s.UserSearch.LoginAttributes, ",") != "sAMAccountName,userPrincipalName" ||
		!strings.Contains(s.userFilter, "userAccountControl:1.2.840.113556.1.4.803:=2") || s.Groups.Filter != "(objectClass=group)" {
		t.Errorf("active_directory settings = %+v", s.LDAPConfig)
	}
	s, _ = validLDAP().LDAP.settings()
	if s.Preset != PresetOpenLDAP || s.Attributes.Subject != "entryUUID" || s.UserSearch.LoginAttributes[0] != "uid" || s.userFilter != "" ||
		s.Groups.Source != groupsMemberOf || s.Timeout != defaultLDAPTimeout || s.MaxConnections != defaultLDAPConns {
		t.Errorf("openldap settings = %+v", s.LDAPConfig)
	}
}
