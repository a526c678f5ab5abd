package providers

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAPConfig is the directory of a provider of type "ldap" (docs/ldap.md):
// an OpenLDAP server or Active Directory that the broker asks, on its own
// login form, whether a username and password are right. It is plain
// data; every field has a default from Preset where one makes sense.
type LDAPConfig struct {
	// Preset fills in the attribute names and filters of a kind of
	// directory: "openldap" (default) or "active_directory". A field set
	// here wins over the preset.
	Preset string `yaml:"preset"`
	// URLs are the directory's servers, tried in order until one answers:
	// ldaps://host[:636], or ldap://host[:389] with StartTLS. Required.
	URLs []string `yaml:"urls"`
	// StartTLS upgrades ldap:// connections to TLS before anything else is
	// sent (RFC 4513 §3). Refused with ldaps://, which is TLS already.
	StartTLS bool `yaml:"start_tls"`
	// InsecureNoTLS allows ldap:// without StartTLS to a host that is not
	// loopback. RISKY: the service account's password and the password of
	// everyone who signs in cross the network in clear text, and whoever can
	// change the answers on the way can sign in as anyone. Without it, plain
	// LDAP is accepted on loopback addresses only.
	InsecureNoTLS bool `yaml:"insecure_no_tls"`
	// CAFile is a PEM file of the CA certificates that may sign the
	// directory's certificate. Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the directory's certificate must carry, when
	// it differs from the URL's host (a URL with an IP address).
	ServerName string `yaml:"server_name"`
	// DialTimeout bounds connecting, TLS included. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Timeout bounds each operation (bind, search); it is also sent as
	// the search's time limit. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConnections bounds the connections to the directory, used in
	// turn by every sign-in and kept open while idle. Default 4, at most
	// 64. A sign-in waits for a free one (within Timeout).
	MaxConnections int `yaml:"max_connections"`
	// BindDN is the service account the broker binds as to find users and
	// their groups; it needs read access only. Required. With the
	// active_directory preset it may also be a user principal name
	// (broker@corp.example.com) or a down-level name (CORP\broker), which
	// Active Directory accepts in a simple bind.
	BindDN string `yaml:"bind_dn"`
	// BindPassword is its password: write ${LDAP_BIND_PASSWORD} to take it
	// from the environment. Never logged or shown.
	BindPassword string `yaml:"bind_password"`
	// BindPasswordFile is a file holding the password instead (a Docker or
	// Kubernetes secret); one trailing newline is ignored.
	BindPasswordFile string `yaml:"bind_password_file"`
	// UserSearch finds the entry of the user who signs in.
	UserSearch LDAPUserSearch `yaml:"user_search"`
	// Attributes name the entry's attributes that make the identity.
	Attributes LDAPAttributes `yaml:"attributes"`
	// Groups says where the user's groups come from.
	Groups LDAPGroups `yaml:"groups"`
	// EmailVerified relays the email attribute as a verified address. Set
	// it only when users cannot change their own email attribute (check the
	// directory's access rules): the broker otherwise relays the email
	// without vouching for it, as for an IdP that does not say it verified
	// the address.
	EmailVerified bool `yaml:"email_verified"`
}

// LDAPUserSearch finds a user's entry: one search under BaseDN for
// (&Filter(|(login_attribute=username)...)), with the username escaped
// (RFC 4515). Exactly one entry must match.
type LDAPUserSearch struct {
	// BaseDN is where users are searched. Required.
	BaseDN string `yaml:"base_dn"`
	// Scope is "sub" (default: the whole subtree) or "one" (its children).
	Scope string `yaml:"scope"`
	// Filter is an extra condition every user entry meets, such as
	// (objectClass=inetOrgPerson). Default: none for OpenLDAP; for Active
	// Directory enabled user accounts.
	Filter string `yaml:"filter"`
	// LoginAttributes are the attributes the typed username is compared
	// with. Default [uid]; on Active Directory [sAMAccountName,
	// userPrincipalName], so that "jdoe" and "jdoe@corp.example.com" both
	// work.
	LoginAttributes []string `yaml:"login_attributes"`
}

// LDAPAttributes name the attributes of a user's entry that make the
// identity.
type LDAPAttributes struct {
	// Subject is a stable, unique id of the entry, relayed as sub: default
	// entryUUID (RFC 4530), on Active Directory objectGUID, which is binary
	// and relayed in its usual text form. Never the username, which can be
	// changed or given to someone else later.
	Subject string `yaml:"subject"`
	// Username is relayed as preferred_username. Default uid; on Active
	// Directory sAMAccountName.
	Username string `yaml:"username"`
	// Name is the display name. Default cn; on Active Directory
	// displayName.
	Name string `yaml:"name"`
	// Email is the email address. Default mail.
	Email string `yaml:"email"`
}

// LDAPGroups says where a user's groups come from and how they are named.
type LDAPGroups struct {
	// Source is "member_of" (default: the user entry's memberOf, which
	// Active Directory keeps and OpenLDAP's memberof overlay maintains),
	// "search" (groups whose member attribute names the user) or "none".
	Source string `yaml:"source"`
	// MemberOfAttribute is the user entry's attribute of group DNs.
	// Default memberOf. Source member_of only.
	MemberOfAttribute string `yaml:"member_of_attribute"`
	// BaseDN is where groups are searched. Required with source search.
	BaseDN string `yaml:"base_dn"`
	// Scope is "sub" (default) or "one". Source search only.
	Scope string `yaml:"scope"`
	// Filter is what a group entry is: default (objectClass=groupOfNames);
	// on Active Directory (objectClass=group). Source search only.
	Filter string `yaml:"filter"`
	// MemberAttribute is the group's attribute naming its members: member
	// (default; groupOfNames), uniqueMember (groupOfUniqueNames) or
	// memberUid (posixGroup). Source search only.
	MemberAttribute string `yaml:"member_attribute"`
	// MemberValue is what MemberAttribute holds: "dn" (default: the
	// user's DN) or "username" (posixGroup's memberUid: the user's
	// Attributes.Username value). Source search only.
	MemberValue string `yaml:"member_value"`
	// Nested adds the groups of the user's groups: "none" (default),
	// "walk" (the broker searches level by level, at most 8 levels and
	// 1,000 groups; any directory) or "in_chain" (Active Directory's
	// LDAP_MATCHING_RULE_IN_CHAIN: one search, done by the server).
	// Source search with member_value dn only.
	Nested string `yaml:"nested"`
	// NameAttribute is the group entry's name. Default cn. With source
	// member_of the name is the value of the group DN's first component
	// (cn=admins,ou=groups,... is "admins").
	NameAttribute string `yaml:"name_attribute"`
	// Relay is what is relayed for each group: "name" (default) or "dn".
	Relay string `yaml:"relay"`
}

// LDAP presets, the values of LDAPConfig.Preset.
const (
	PresetOpenLDAP        = "openldap"
	PresetActiveDirectory = "active_directory"
)

// Group sources and nesting.
const (
	groupsMemberOf = "member_of"
	groupsSearch   = "search"
	groupsNone     = "none"
	nestedNone     = "none"
	nestedWalk     = "walk"
	nestedInChain  = "in_chain"
)

// ldapPresets are the defaults of each kind of directory, as data.
var ldapPresets = map[string]LDAPConfig{
	PresetOpenLDAP: {
		UserSearch: LDAPUserSearch{LoginAttributes: []string{"uid"}},
		Attributes: LDAPAttributes{Subject: "entryUUID", Username: "uid", Name: "cn", Email: "mail"},
		Groups: LDAPGroups{Source: groupsMemberOf, MemberOfAttribute: "memberOf", Filter: "(objectClass=groupOfNames)",
			MemberAttribute: "member", MemberValue: "dn", Nested: nestedNone, NameAttribute: "cn", Relay: "name"},
	},
	PresetActiveDirectory: {
		UserSearch: LDAPUserSearch{
			// Person accounts that are not disabled (userAccountControl bit 2,
			// tested with LDAP_MATCHING_RULE_BIT_AND).
			Filter:          "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
			LoginAttributes: []string{"sAMAccountName", "userPrincipalName"},
		},
		Attributes: LDAPAttributes{Subject: "objectGUID", Username: "sAMAccountName", Name: "displayName", Email: "mail"},
		Groups: LDAPGroups{Source: groupsMemberOf, MemberOfAttribute: "memberOf", Filter: "(objectClass=group)",
			MemberAttribute: "member", MemberValue: "dn", Nested: nestedNone, NameAttribute: "cn", Relay: "name"},
	},
}

// Defaults of the connection.
const (
	defaultLDAPDialTimeout = 5 * time.Second
	defaultLDAPTimeout     = 10 * time.Second
	defaultLDAPConns       = 4
	maxLDAPConns           = 64
)

// ldapSettings is an LDAPConfig with the preset and defaults applied, its
// files read and its TLS configuration built: what the provider runs with.
type ldapSettings struct {
	LDAPConfig
	tls         *tls.Config // nil only for plain LDAP
	password    string
	userFilter  string // the configured extra filter, or ""
	groupFilter string
}

// settings applies the preset and defaults, reads the files and checks
// everything; each problem names its field ("ldap.urls[0]: ...").
func (c LDAPConfig) settings() (ldapSettings, []error) {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ldap.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	preset := or(c.Preset, PresetOpenLDAP)
	p, ok := ldapPresets[preset]
	if !ok {
		add("preset", "%q is not one of openldap, active_directory", c.Preset)
		p = ldapPresets[PresetOpenLDAP]
	}
	s := ldapSettings{LDAPConfig: c.withDefaults(p)}

	if len(c.URLs) == 0 {
		add("urls", "is required: ldaps://host or ldap://host with start_tls")
	}
	for i, u := range c.URLs {
		if err := c.checkURL(u); err != nil {
			add(fmt.Sprintf("urls[%d]", i), "%q %v", u, err)
		}
	}
	s.tls, errs = c.tlsConfig(errs)
	if c.DialTimeout < 0 {
		add("dial_timeout", "must not be negative")
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative")
	}
	if c.MaxConnections < 0 || c.MaxConnections > maxLDAPConns {
		add("max_connections", "%d is not between 1 and %d", c.MaxConnections, maxLDAPConns)
	}
	_, dnErr := ldap.ParseDN(c.BindDN)
	adName := s.Preset == PresetActiveDirectory && !strings.Contains(c.BindDN, "=") && strings.ContainsAny(c.BindDN, `@\`)
	switch {
	case c.BindDN == "":
		add("bind_dn", "is required: the service account that finds users (read access is enough)")
	case dnErr != nil && !adName:
		add("bind_dn", "%q is not a DN (on Active Directory also a user principal name, broker@corp.example.com): %v", c.BindDN, dnErr)
	}
	s.password, errs = c.bindPassword(errs)

	us := s.UserSearch
	errs = checkDN(errs, "user_search.base_dn", us.BaseDN, true)
	errs = checkScope(errs, "user_search.scope", us.Scope)
	s.userFilter, errs = checkFilter(errs, "user_search.filter", us.Filter)
	if len(us.LoginAttributes) == 0 {
		add("user_search.login_attributes", "must name at least one attribute")
	}
	for i, a := range us.LoginAttributes {
		errs = checkAttr(errs, fmt.Sprintf("user_search.login_attributes[%d]", i), a)
	}
	at := s.Attributes
	for _, f := range []struct{ key, value string }{{"subject", at.Subject}, {"username", at.Username}, {"name", at.Name}, {"email", at.Email}} {
		errs = checkAttr(errs, "attributes."+f.key, f.value)
	}
	if strings.EqualFold(at.Subject, at.Username) || slices.ContainsFunc(us.LoginAttributes, func(a string) bool { return strings.EqualFold(a, at.Subject) }) ||
		strings.EqualFold(at.Subject, "dn") {
		add("attributes.subject", "%q is a username or the DN, which can be renamed or reused: use a stable id such as entryUUID or objectGUID", at.Subject)
	}
	s.groupFilter, errs = s.Groups.check(errs, c.Groups)
	return s, errs
}

// withDefaults fills the empty fields from the preset p and the defaults.
func (c LDAPConfig) withDefaults(p LDAPConfig) LDAPConfig {
	c.Preset = or(c.Preset, PresetOpenLDAP)
	c.DialTimeout = orDuration(c.DialTimeout, defaultLDAPDialTimeout)
	c.Timeout = orDuration(c.Timeout, defaultLDAPTimeout)
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultLDAPConns
	}
	us, pu := &c.UserSearch, p.UserSearch
	us.Scope = or(us.Scope, "sub")
	us.Filter = or(us.Filter, pu.Filter)
	if len(us.LoginAttributes) == 0 {
		us.LoginAttributes = pu.LoginAttributes
	}
	at, pa := &c.Attributes, p.Attributes
	at.Subject, at.Username, at.Name, at.Email = or(at.Subject, pa.Subject), or(at.Username, pa.Username), or(at.Name, pa.Name), or(at.Email, pa.Email)
	g, pg := &c.Groups, p.Groups
	g.Source = or(g.Source, pg.Source)
	g.MemberOfAttribute = or(g.MemberOfAttribute, pg.MemberOfAttribute)
	g.Scope = or(g.Scope, "sub")
	g.Filter = or(g.Filter, pg.Filter)
	g.MemberAttribute = or(g.MemberAttribute, pg.MemberAttribute)
	g.MemberValue = or(g.MemberValue, pg.MemberValue)
	g.Nested = or(g.Nested, pg.Nested)
	g.NameAttribute = or(g.NameAttribute, pg.NameAttribute)
	g.Relay = or(g.Relay, pg.Relay)
	return c
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// check validates the group settings (g with defaults, raw as written, to
// tell what the user set) and returns the compiled group filter.
func (g LDAPGroups) check(errs []error, raw LDAPGroups) (string, []error) {
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ldap.groups.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch g.Source {
	case groupsMemberOf, groupsNone:
		for _, f := range []struct{ key, value string }{{"base_dn", raw.BaseDN}, {"scope", raw.Scope}, {"filter", raw.Filter},
			{"member_attribute", raw.MemberAttribute}, {"member_value", raw.MemberValue}, {"nested", raw.Nested}} {
			if f.value != "" {
				add(f.key, "is only used with groups.source search")
			}
		}
		if g.Source == groupsMemberOf {
			errs = checkAttr(errs, "groups.member_of_attribute", g.MemberOfAttribute)
		}
	case groupsSearch:
		if raw.MemberOfAttribute != "" {
			add("member_of_attribute", "is only used with groups.source member_of")
		}
		errs = checkDN(errs, "groups.base_dn", g.BaseDN, true)
		errs = checkScope(errs, "groups.scope", g.Scope)
		errs = checkAttr(errs, "groups.member_attribute", g.MemberAttribute)
		switch g.MemberValue {
		case "dn", "username":
		default:
			add("member_value", "%q is not one of dn, username", g.MemberValue)
		}
		switch g.Nested {
		case nestedNone:
		case nestedWalk, nestedInChain:
			if g.MemberValue == "username" {
				add("nested", "needs member_value dn: a group names its member groups by DN")
			}
		default:
			add("nested", "%q is not one of none, walk, in_chain", g.Nested)
		}
	default:
		add("source", "%q is not one of member_of, search, none", g.Source)
	}
	filter, errs := checkFilter(errs, "groups.filter", g.Filter)
	if g.Source != groupsNone {
		errs = checkAttr(errs, "groups.name_attribute", g.NameAttribute)
		if g.Relay != "name" && g.Relay != "dn" {
			add("relay", "%q is not one of name, dn", g.Relay)
		}
	}
	return filter, errs
}

// checkURL accepts ldaps://host[:port], and ldap://host[:port] with
// StartTLS, or on loopback, or with InsecureNoTLS.
func (c LDAPConfig) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		return errors.New("must be an ldaps:// or ldap:// URL")
	case u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be scheme://host[:port] only (the base DN is user_search.base_dn)")
	case u.Port() != "" && !portPattern.MatchString(u.Port()):
		return errors.New("has an invalid port")
	case u.Scheme == "ldaps" && c.StartTLS:
		return errors.New("is TLS already: start_tls is for ldap:// URLs")
	case u.Scheme == "ldap" && !c.StartTLS && !c.InsecureNoTLS && !isLoopback(u.Hostname()):
		return errors.New("would send passwords in clear text: use ldaps://, set start_tls, or (risky) insecure_no_tls")
	}
	return nil
}

// tlsConfig builds the TLS configuration: the CA file's roots (or the
// system's), the server name, TLS 1.2 at least.
func (c LDAPConfig) tlsConfig(errs []error) (*tls.Config, []error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if strings.ContainsAny(c.ServerName, " /:") {
		errs = append(errs, fmt.Errorf("ldap.server_name: %q is not a host name", c.ServerName))
	}
	if c.CAFile == "" {
		return cfg, errs
	}
	pemBytes, err := os.ReadFile(c.CAFile)
	if err != nil {
		return cfg, append(errs, fmt.Errorf("ldap.ca_file: cannot read %q: %w", c.CAFile, errors.Unwrap(err)))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return cfg, append(errs, fmt.Errorf("ldap.ca_file: %q holds no PEM certificate", c.CAFile))
	}
	cfg.RootCAs = pool
	return cfg, errs
}

// bindPassword is the service account's password, from the configuration
// or its file. Errors never quote it.
func (c LDAPConfig) bindPassword(errs []error) (string, []error) {
	switch {
	case c.BindPassword != "" && c.BindPasswordFile != "":
		return "", append(errs, errors.New("ldap.bind_password_file: set bind_password or bind_password_file, not both"))
	case c.BindPasswordFile != "":
		b, err := os.ReadFile(c.BindPasswordFile)
		if err != nil {
			return "", append(errs, fmt.Errorf("ldap.bind_password_file: cannot read %q: %w", c.BindPasswordFile, errors.Unwrap(err)))
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return "", append(errs, fmt.Errorf("ldap.bind_password_file: %q is empty", c.BindPasswordFile))
		}
		return pw, errs
	case c.BindPassword == "":
		return "", append(errs, errors.New("ldap.bind_password: is required (or bind_password_file): an empty password would be an unauthenticated bind"))
	}
	return c.BindPassword, errs
}

var portPattern = regexp.MustCompile(`^[0-9]{1,5}$`)

var attrPattern = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]{0,127}|[0-9]+(?:\.[0-9]+)+)$`)

// checkAttr accepts an attribute name (RFC 4512 §2.5: a descriptor or a
// numeric OID).
func checkAttr(errs []error, field, a string) []error {
	if a == "" {
		return append(errs, fmt.Errorf("ldap.%s: is required", field))
	}
	if !attrPattern.MatchString(a) {
		return append(errs, fmt.Errorf("ldap.%s: %q is not an attribute name", field, a))
	}
	return errs
}

func checkDN(errs []error, field, dn string, required bool) []error {
	if dn == "" {
		if required {
			errs = append(errs, fmt.Errorf("ldap.%s: is required", field))
		}
		return errs
	}
	if _, err := ldap.ParseDN(dn); err != nil {
		errs = append(errs, fmt.Errorf("ldap.%s: %q is not a DN: %w", field, dn, err))
	}
	return errs
}

func checkScope(errs []error, field, scope string) []error {
	if scope != "sub" && scope != "one" {
		errs = append(errs, fmt.Errorf("ldap.%s: %q is not one of sub, one", field, scope))
	}
	return errs
}

// checkFilter accepts "" or one parenthesized filter (RFC 4515).
func checkFilter(errs []error, field, f string) (string, []error) {
	if f == "" {
		return "", errs
	}
	if !strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") {
		return "", append(errs, fmt.Errorf("ldap.%s: %q must be one filter in parentheses, such as (objectClass=person)", field, f))
	}
	if _, err := ldap.CompileFilter(f); err != nil {
		return "", append(errs, fmt.Errorf("ldap.%s: %q is not a valid filter: %w", field, f, err))
	}
	return f, errs
}

// ldapScope is the protocol value of "sub" or "one".
func ldapScope(s string) int {
	if s == "one" {
		return ldap.ScopeSingleLevel
	}
	return ldap.ScopeWholeSubtree
}
