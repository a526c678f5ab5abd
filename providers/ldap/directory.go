package ldap

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/providers"
)

// What the directory may hand back for one sign-in.
const (
	maxLDAPGroups     = 1000 // groups per user; more are dropped and the list marked incomplete
	maxLDAPGroupDepth = 8    // levels of nesting the walk follows
	ldapWalkBatch     = 32   // groups asked about in one search of the walk
	maxUsernameBytes  = 256
)

// ldapStepError says which step of a sign-in the directory failed at.
type ldapStepError struct {
	step string
	err  error
}

func (e *ldapStepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *ldapStepError) Unwrap() error { return e.err }

// ldapEntryError: the user's entry cannot make an identity (no subject,
// or an unusable one). The entry's fault, not the directory's.
type ldapEntryError struct {
	dn  string
	err error
}

func (e *ldapEntryError) Error() string { return fmt.Sprintf("entry %q %v", e.dn, e.err) }

// signIn finds username's entry, binds as it with password and reads the
// identity. A username that matches no entry or several is refused after
// one bind that cannot succeed, so that it takes about as long as a wrong
// password.
func (p *provider) signIn(c *conn, username, password string) (providers.Identity, error) {
	entry, err := p.findUser(c, username)
	if err != nil {
		return providers.Identity{}, err
	}
	if entry == nil {
		if err := p.decoyBind(c); err != nil {
			return providers.Identity{}, &ldapStepError{"bind", err}
		}
		return providers.Identity{}, providers.ErrInvalidCredentials
	}
	if err := c.bindAs(entry.DN, password); err != nil {
		if !ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
			ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultUnwillingToPerform) {
			return providers.Identity{}, &ldapStepError{"bind as the user", err}
		}
		p.opts.Logger.Debug("ldap provider: the directory refused the user's bind", "provider", p.cfg.ID,
			"dn", entry.DN, "reason", describeLDAPError(err))
		return providers.Identity{}, providers.ErrInvalidCredentials
	}
	return p.identity(c, entry, username)
}

// findUser searches the one entry of username: nil when none or several
// match (the latter is logged: the filter is too wide).
func (p *provider) findUser(c *conn, username string) (*ldap.Entry, error) {
	us := p.set.UserSearch
	req := ldap.NewSearchRequest(us.BaseDN, ldapScope(us.Scope), ldap.NeverDerefAliases, 2, p.timeLimit(), false,
		userFilter(p.set.userFilter, us.LoginAttributes, username), p.userAttributes(), nil)
	res, err := c.search(req)
	several := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
	switch {
	case err != nil && !several:
		return nil, &ldapStepError{"user search", err}
	case !several && len(res.Entries) == 1:
		return res.Entries[0], nil
	case !several && len(res.Entries) == 0:
		return nil, nil
	}
	p.opts.Logger.Warn("ldap provider: several entries match the username; refusing the sign-in (narrow user_search.filter or base_dn)",
		"provider", p.cfg.ID, "username", truncateText(username, 64))
	return nil, nil
}

// decoyBind binds as an entry that does not exist, with a random password.
func (p *provider) decoyBind(c *conn) error {
	dn := "cn=" + ldap.EscapeDN("no-such-user-"+rand.Text()) + "," + p.set.UserSearch.BaseDN
	err := c.bindAs(dn, rand.Text())
	if err != nil && c.broken(err) {
		return err
	}
	return nil
}

// userAttributes are the attributes the user search asks for.
func (p *provider) userAttributes() []string {
	at := p.set.Attributes
	attrs := []string{at.Subject, at.Username, at.Name, at.Email}
	if p.set.Groups.Source == groupsMemberOf {
		attrs = append(attrs, p.set.Groups.MemberOfAttribute)
	}
	return slices.Compact(attrs)
}

// identity makes the identity of the user's entry e: the subject
// attribute (never the username), the username, name and email
// attributes, and the groups.
func (p *provider) identity(c *conn, e *ldap.Entry, typed string) (providers.Identity, error) {
	at := p.set.Attributes
	sub, err := subjectOf(e, at.Subject)
	if err != nil {
		return providers.Identity{}, &ldapEntryError{dn: e.DN, err: err}
	}
	id := providers.Identity{
		Provider:          p.cfg.ID,
		Subject:           sub,
		PreferredUsername: cmp.Or(e.GetEqualFoldAttributeValue(at.Username), typed),
		Name:              e.GetEqualFoldAttributeValue(at.Name),
		Email:             e.GetEqualFoldAttributeValue(at.Email),
		AuthTime:          p.opts.Now(),
		AuthnTime:         p.opts.Now(), // the password, checked now
	}
	id.EmailVerified = p.set.EmailVerified && id.Email != ""
	groups, incomplete, err := p.groups(c, e, id.PreferredUsername)
	if err != nil {
		return providers.Identity{}, &ldapStepError{"group search", err}
	}
	if incomplete {
		p.opts.Logger.Warn("ldap provider: the user's groups were cut short; relaying the identity with groups_incomplete",
			"provider", p.cfg.ID, "sub", sub, "kept", len(groups))
	}
	for _, g := range groups {
		id.Groups = append(id.Groups, p.cfg.Claims.GroupPrefix+g)
	}
	for _, g := range p.cfg.Claims.StaticGroups {
		if !slices.Contains(id.Groups, g) {
			id.Groups = append(id.Groups, g)
		}
	}
	id.GroupsIncomplete = incomplete
	return id, nil
}

// guidAttributes hold a 16-byte Microsoft GUID (objectGUID, and the
// ms-DS-ConsistencyGuid that Entra Connect uses as source anchor).
var guidAttributes = []string{"objectGUID", "mS-DS-ConsistencyGuid"}

// subjectOf is the entry's one value of attr as text: a GUID in its usual
// form (Microsoft's byte order: the first three fields little-endian, as
// PowerShell and .NET show it), anything else as it is, if it is short
// printable UTF-8.
func subjectOf(e *ldap.Entry, attr string) (string, error) {
	values := e.GetEqualFoldRawAttributeValues(attr)
	if len(values) != 1 {
		return "", fmt.Errorf("has %d values of the subject attribute %s, want exactly one", len(values), attr)
	}
	v := values[0]
	if slices.ContainsFunc(guidAttributes, func(a string) bool { return strings.EqualFold(a, attr) }) {
		if len(v) != 16 {
			return "", fmt.Errorf("has a %s of %d bytes, want 16", attr, len(v))
		}
		return formatGUID(v), nil
	}
	if len(v) == 0 || len(v) > maxUsernameBytes || !utf8.Valid(v) || strings.ContainsFunc(string(v), unicode.IsControl) {
		return "", fmt.Errorf("has a %s that is not short printable text (a binary attribute other than objectGUID cannot be the subject)", attr)
	}
	return string(v), nil
}

// formatGUID writes a Microsoft GUID as text: 33 01 d8 e1 ... is
// e1d80133-...; the first three fields are stored little-endian.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// groups are the names (or DNs) of the user's groups, and whether the list
// was cut short.
func (p *provider) groups(c *conn, e *ldap.Entry, username string) ([]string, bool, error) {
	g := p.set.Groups
	switch g.Source {
	case groupsNone:
		return nil, false, nil
	case groupsMemberOf:
		var out []string
		for _, dn := range e.GetEqualFoldAttributeValues(g.MemberOfAttribute) {
			if len(out) == maxLDAPGroups {
				return out, true, nil
			}
			name := dn
			if g.Relay == "name" {
				name = firstRDNValue(dn)
			}
			if name != "" && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		return out, false, nil
	}
	var entries []*ldap.Entry
	var incomplete bool
	var err error
	switch g.Nested {
	case nestedWalk:
		entries, incomplete, err = p.walkGroups(c, e.DN)
	case nestedInChain:
		entries, incomplete, err = p.searchGroups(c, inChainFilter(p.set.groupFilter, g.MemberAttribute, e.DN))
	default:
		member := e.DN
		if g.MemberValue == "username" {
			member = username
		}
		entries, incomplete, err = p.searchGroups(c, memberFilter(p.set.groupFilter, g.MemberAttribute, []string{member}))
	}
	var out []string
	for _, ge := range entries {
		name := ge.DN
		if g.Relay == "name" {
			name = cmp.Or(ge.GetEqualFoldAttributeValue(g.NameAttribute), firstRDNValue(ge.DN))
		}
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, incomplete, err
}

// searchGroups runs one group search, at most maxLDAPGroups entries.
func (p *provider) searchGroups(c *conn, filter string) ([]*ldap.Entry, bool, error) {
	g := p.set.Groups
	req := ldap.NewSearchRequest(g.BaseDN, ldapScope(g.Scope), ldap.NeverDerefAliases, maxLDAPGroups, p.timeLimit(), false,
		filter, []string{g.NameAttribute}, nil)
	req.EnforceSizeLimit = true // the client stops at the limit, whatever the server does
	res, err := c.search(req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return res.Entries, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return res.Entries, false, nil
}

// walkGroups finds the groups of userDN and, level by level, the groups
// those are members of, for directories without a server-side rule for
// nesting (OpenLDAP). A cycle ends where it closes; the walk stops after
// maxLDAPGroupDepth levels or maxLDAPGroups groups, and then says the list
// is incomplete.
func (p *provider) walkGroups(c *conn, userDN string) ([]*ldap.Entry, bool, error) {
	seen := map[string]bool{dnKey(userDN): true}
	var found []*ldap.Entry
	incomplete := false
	frontier := []string{userDN}
	for depth := 0; len(frontier) > 0; depth++ {
		if depth == maxLDAPGroupDepth {
			return found, true, nil
		}
		var next []string
		for batch := range slices.Chunk(frontier, ldapWalkBatch) {
			entries, cut, err := p.searchGroups(c, memberFilter(p.set.groupFilter, p.set.Groups.MemberAttribute, batch))
			if err != nil {
				return nil, false, err
			}
			incomplete = incomplete || cut
			for _, ge := range entries {
				if k := dnKey(ge.DN); !seen[k] {
					seen[k] = true
					found = append(found, ge)
					next = append(next, ge.DN)
				}
				if len(found) == maxLDAPGroups {
					return found, true, nil
				}
			}
		}
		frontier = next
	}
	return found, incomplete, nil
}

// dnKey is a DN in a form that equal DNs share (case and spacing).
func dnKey(dn string) string {
	if parsed, err := ldap.ParseDN(dn); err == nil {
		return strings.ToLower(parsed.String())
	}
	return strings.ToLower(dn)
}

// firstRDNValue is the value of a DN's first component: "admins" for
// cn=admins,ou=groups,dc=example,dc=org; "" for an unparsable DN.
func firstRDNValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return ""
	}
	return parsed.RDNs[0].Attributes[0].Value
}

// plausibleUsername reports whether an entry could have this username:
// 1 to 256 bytes of UTF-8 without control characters. Anything else is
// refused without asking the directory.
func plausibleUsername(u string) bool {
	return u != "" && len(u) <= maxUsernameBytes && utf8.ValidString(u) && !strings.ContainsFunc(u, unicode.IsControl)
}

// userFilter is the user search's filter, (&extra(|(a1=u)(a2=u)...)), with
// the username escaped (RFC 4515 §3: *, (, ), \, NUL and every byte above
// 0x7f become \xx), so that no username can change the filter's structure
// (FuzzUserFilter).
func userFilter(extra string, attrs []string, username string) string {
	v := ldap.EscapeFilter(username)
	terms := make([]string, len(attrs))
	for i, a := range attrs {
		terms[i] = "(" + a + "=" + v + ")"
	}
	return allOf(extra, anyOf(terms))
}

// memberFilter finds the groups whose attr names one of values:
// (&extra(|(attr=v1)(attr=v2)...)), the values escaped.
func memberFilter(extra, attr string, values []string) string {
	terms := make([]string, len(values))
	for i, v := range values {
		terms[i] = "(" + attr + "=" + ldap.EscapeFilter(v) + ")"
	}
	return allOf(extra, anyOf(terms))
}

// matchingRuleInChain is Active Directory's LDAP_MATCHING_RULE_IN_CHAIN:
// (member:1.2.840.113556.1.4.1941:=<user DN>) matches the groups the user
// is a member of directly or through other groups.
const matchingRuleInChain = "1.2.840.113556.1.4.1941"

// inChainFilter finds dn's groups, nested ones included, in one search on
// Active Directory.
func inChainFilter(extra, attr, dn string) string {
	return allOf(extra, "("+attr+":"+matchingRuleInChain+":="+ldap.EscapeFilter(dn)+")")
}

func anyOf(terms []string) string {
	if len(terms) == 1 {
		return terms[0]
	}
	return "(|" + strings.Join(terms, "") + ")"
}

func allOf(extra, term string) string {
	if extra == "" {
		return term
	}
	return "(&" + extra + term + ")"
}

// truncateText keeps logged usernames (which may be anything typed) short.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
