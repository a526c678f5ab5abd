package ldap

import (
	"cmp"
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

	"github.com/oidc-broker/oidc-broker/providers"
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
var ldapPresets = map[string]providers.LDAPConfig{
	providers.PresetOpenLDAP: {
		UserSearch: providers.LDAPUserSearch{LoginAttributes: []string{"uid"}},
		Attributes: providers.LDAPAttributes{Subject: "entryUUID", Username: "uid", Name: "cn", Email: "mail"},
		Groups: providers.LDAPGroups{Source: groupsMemberOf, MemberOfAttribute: "memberOf", Filter: "(objectClass=groupOfNames)",
			MemberAttribute: "member", MemberValue: "dn", Nested: nestedNone, NameAttribute: "cn", Relay: "name"},
	},
	providers.PresetActiveDirectory: {
		UserSearch: providers.LDAPUserSearch{
			// Person accounts that are not disabled (userAccountControl bit 2,
			// tested with LDAP_MATCHING_RULE_BIT_AND).
			Filter:          "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
			LoginAttributes: []string{"sAMAccountName", "userPrincipalName"},
		},
		Attributes: providers.LDAPAttributes{Subject: "objectGUID", Username: "sAMAccountName", Name: "displayName", Email: "mail"},
		Groups: providers.LDAPGroups{Source: groupsMemberOf, MemberOfAttribute: "memberOf", Filter: "(objectClass=group)",
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

// settings is an LDAPConfig with the preset and defaults applied, its
// files read and its TLS configuration built: what the provider runs with.
type settings struct {
	providers.LDAPConfig
	tls         *tls.Config // nil only for plain LDAP
	password    string
	userFilter  string // the configured extra filter, or ""
	groupFilter string
}

// load applies the preset and defaults, reads the files and checks
// everything; each problem names its field ("ldap.urls[0]: ...").
func load(c providers.LDAPConfig) (settings, []error) {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ldap.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	preset := cmp.Or(c.Preset, providers.PresetOpenLDAP)
	p, ok := ldapPresets[preset]
	if !ok {
		add("preset", "%q is not one of openldap, active_directory", c.Preset)
		p = ldapPresets[providers.PresetOpenLDAP]
	}
	s := settings{LDAPConfig: withDefaults(c, p)}

	if len(c.URLs) == 0 {
		add("urls", "is required: ldaps://host or ldap://host with start_tls")
	}
	for i, u := range c.URLs {
		if err := checkURL(c, u); err != nil {
			add(fmt.Sprintf("urls[%d]", i), "%q %v", u, err)
		}
	}
	s.tls, errs = tlsConfig(c, errs)
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
	adName := s.Preset == providers.PresetActiveDirectory && !strings.Contains(c.BindDN, "=") && strings.ContainsAny(c.BindDN, `@\`)
	switch {
	case c.BindDN == "":
		add("bind_dn", "is required: the service account that finds users (read access is enough)")
	case dnErr != nil && !adName:
		add("bind_dn", "%q is not a DN (on Active Directory also a user principal name, broker@corp.example.com): %v", c.BindDN, dnErr)
	}
	s.password, errs = bindPassword(c, errs)

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
	s.groupFilter, errs = checkGroups(s.Groups, errs, c.Groups)
	return s, errs
}

// withDefaults fills the empty fields from the preset p and the defaults.
func withDefaults(c, p providers.LDAPConfig) providers.LDAPConfig {
	c.Preset = cmp.Or(c.Preset, providers.PresetOpenLDAP)
	c.DialTimeout = orDuration(c.DialTimeout, defaultLDAPDialTimeout)
	c.Timeout = orDuration(c.Timeout, defaultLDAPTimeout)
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultLDAPConns
	}
	us, pu := &c.UserSearch, p.UserSearch
	us.Scope = cmp.Or(us.Scope, "sub")
	us.Filter = cmp.Or(us.Filter, pu.Filter)
	if len(us.LoginAttributes) == 0 {
		us.LoginAttributes = pu.LoginAttributes
	}
	at, pa := &c.Attributes, p.Attributes
	at.Subject, at.Username, at.Name, at.Email = cmp.Or(at.Subject, pa.Subject), cmp.Or(at.Username, pa.Username), cmp.Or(at.Name, pa.Name), cmp.Or(at.Email, pa.Email)
	g, pg := &c.Groups, p.Groups
	g.Source = cmp.Or(g.Source, pg.Source)
	g.MemberOfAttribute = cmp.Or(g.MemberOfAttribute, pg.MemberOfAttribute)
	g.Scope = cmp.Or(g.Scope, "sub")
	g.Filter = cmp.Or(g.Filter, pg.Filter)
	g.MemberAttribute = cmp.Or(g.MemberAttribute, pg.MemberAttribute)
	g.MemberValue = cmp.Or(g.MemberValue, pg.MemberValue)
	g.Nested = cmp.Or(g.Nested, pg.Nested)
	g.NameAttribute = cmp.Or(g.NameAttribute, pg.NameAttribute)
	g.Relay = cmp.Or(g.Relay, pg.Relay)
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
func checkGroups(g providers.LDAPGroups, errs []error, raw providers.LDAPGroups) (string, []error) {
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
func checkURL(c providers.LDAPConfig, raw string) error {
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
	case u.Scheme == "ldap" && !c.StartTLS && !c.InsecureNoTLS && !providers.IsLoopback(u.Hostname()):
		return errors.New("would send passwords in clear text: use ldaps://, set start_tls, or (risky) insecure_no_tls")
	}
	return nil
}

// tlsConfig builds the TLS configuration: the CA file's roots (or the
// system's), the server name, TLS 1.2 at least.
func tlsConfig(c providers.LDAPConfig, errs []error) (*tls.Config, []error) {
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
func bindPassword(c providers.LDAPConfig, errs []error) (string, []error) {
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
