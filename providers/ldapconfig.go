package providers

import "time"

// LDAPConfig is the directory of a provider of type "ldap" (docs/ldap.md):
// an OpenLDAP server or Active Directory that the broker asks, on its own
// login form, whether a username and password are right. It is plain
// data; every field has a default from Preset where one makes sense.
// Package providers/ldap applies the preset and the defaults, checks the
// settings and runs the provider.
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
