package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// The checks of an LDAP provider's report (Finding.Check).
const (
	checkLDAPConnect = "connect"
	checkLDAPBind    = "bind"
	checkLDAPServer  = "server"
	checkLDAPUsers   = "user_search"
	checkLDAPGroups  = "groups"
)

// ldapSample is how many entries check --online reads to count users and
// groups and to look at their attributes.
const ldapSample = 1000

// adCapability is the root DSE's supportedCapabilities value of Active
// Directory (LDAP_CAP_ACTIVE_DIRECTORY_OID).
const adCapability = "1.2.840.113556.1.4.800"

// probeLDAP reports what the broker finds at an LDAP provider's directory:
// each server (its connection and TLS), the service account's bind, the
// kind of server (from the root DSE), the user search (its base, how many
// entries the filter finds, whether they carry the configured attributes,
// usernames that match several) and the groups. It never shows the bind
// password and changes nothing.
func (r *Report) probeLDAP(ctx context.Context, cfg Config) {
	if cfg.LDAP == nil {
		r.add(checkLDAPConnect, SeverityError, "the provider has no ldap settings")
		return
	}
	s, errs := cfg.LDAP.settings()
	if len(errs) > 0 {
		r.add(checkLDAPConnect, SeverityError, "the configuration is invalid: %v", errors.Join(errs...))
		return
	}
	pool := newLDAPPool(s)
	reachable := false
	for _, u := range s.URLs {
		c, err := pool.dialURL(ctx, u)
		if err != nil {
			r.add(checkLDAPConnect, SeverityError, "%s", reason(err))
			continue
		}
		reachable = true
		r.add(checkLDAPConnect, SeverityOK, "%s answers, %s", u, tlsSummary(c, s))
		c.Close()
	}
	if !reachable {
		return
	}
	err := pool.run(ctx, func(c *ldapConn) error {
		if err := c.asService(); err != nil {
			r.add(checkLDAPBind, SeverityError, "as %s: %s", s.BindDN, describeLDAPError(errors.Unwrap(err)))
			return nil
		}
		r.add(checkLDAPBind, SeverityOK, "bound as %s", s.BindDN)
		p := &ldapProvider{cfg: cfg, set: s}
		r.probeServer(c, s)
		users := r.probeUsers(c, p)
		r.probeGroups(c, p, users)
		return nil
	})
	if err != nil {
		r.add(checkLDAPConnect, SeverityError, "the connection failed: %s", describeLDAPError(err))
	}
	pool.flushIdle()
}

// tlsSummary describes a new connection's protection.
func tlsSummary(c *ldap.Conn, s ldapSettings) string {
	st, ok := c.TLSConnectionState()
	if !ok {
		return "plain LDAP without TLS"
	}
	how := "LDAPS"
	if s.StartTLS {
		how = "StartTLS"
	}
	roots := "the system's roots"
	if s.CAFile != "" {
		roots = s.CAFile
	}
	return fmt.Sprintf("%s, %s, certificate of %q verified against %s", how, tls.VersionName(st.Version),
		st.PeerCertificates[0].Subject.CommonName, roots)
}

// probeServer reads the root DSE: the kind of server, and whether the
// preset and nesting suit it.
func (r *Report) probeServer(c *ldapConn, s ldapSettings) {
	res, err := c.search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)",
		[]string{"vendorName", "vendorVersion", "supportedCapabilities", "namingContexts"}, nil))
	if err != nil || len(res.Entries) == 0 {
		r.add(checkLDAPServer, SeverityWarning, "the root DSE is not readable, so the kind of server is unknown")
		return
	}
	dse := res.Entries[0]
	ad := slices.Contains(dse.GetAttributeValues("supportedCapabilities"), adCapability)
	kind := "an LDAP server"
	switch {
	case ad:
		kind = "Active Directory"
	case dse.GetAttributeValue("vendorName") != "":
		kind = strings.TrimSpace(dse.GetAttributeValue("vendorName") + " " + dse.GetAttributeValue("vendorVersion"))
	}
	r.add(checkLDAPServer, SeverityOK, "%s; naming contexts: %s", kind, strings.Join(dse.GetAttributeValues("namingContexts"), ", "))
	switch {
	case ad && s.Preset != PresetActiveDirectory:
		r.add(checkLDAPServer, SeverityWarning, "the server is Active Directory, but preset is %s", s.Preset)
	case !ad && s.Preset == PresetActiveDirectory:
		r.add(checkLDAPServer, SeverityWarning, "preset is active_directory, but the server does not announce Active Directory")
	}
	if s.Groups.Source == groupsSearch && s.Groups.Nested == nestedInChain && !ad {
		r.add(checkLDAPGroups, SeverityError, "nested: in_chain needs Active Directory's matching rule, which this server does not announce; use nested: walk")
	}
}

// probeUsers reports the user search: its base, how many entries it finds
// (up to ldapSample), whether they carry the subject and email attributes,
// and usernames that several entries share. It returns the entries read.
func (r *Report) probeUsers(c *ldapConn, p *ldapProvider) []*ldap.Entry {
	us := p.set.UserSearch
	if _, err := c.search(ldap.NewSearchRequest(us.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, p.timeLimit(), false,
		"(objectClass=*)", []string{"1.1"}, nil)); err != nil {
		r.add(checkLDAPUsers, SeverityError, "user_search.base_dn %s: %s (or the service account may not read it)", us.BaseDN, describeLDAPError(err))
		return nil
	}
	present := make([]string, len(us.LoginAttributes))
	for i, a := range us.LoginAttributes {
		present[i] = "(" + a + "=*)"
	}
	filter := allOf(p.set.userFilter, anyOf(present))
	attrs := append(p.userAttributes(), us.LoginAttributes...)
	res, err := c.search(ldap.NewSearchRequest(us.BaseDN, ldapScope(us.Scope), ldap.NeverDerefAliases, ldapSample, p.timeLimit(), false,
		filter, attrs, nil))
	cut := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
	if err != nil && !cut {
		r.add(checkLDAPUsers, SeverityError, "searching %s for %s: %s", us.BaseDN, filter, describeLDAPError(err))
		return nil
	}
	n := fmt.Sprint(len(res.Entries))
	if cut {
		n = "at least " + n
	}
	if len(res.Entries) == 0 {
		r.add(checkLDAPUsers, SeverityError, "no entry under %s matches %s: nobody can sign in", us.BaseDN, filter)
		return nil
	}
	noSubject, withEmail := 0, 0
	owners := map[string]int{}
	for _, e := range res.Entries {
		if _, err := subjectOf(e, p.set.Attributes.Subject); err != nil {
			noSubject++
		}
		if e.GetEqualFoldAttributeValue(p.set.Attributes.Email) != "" {
			withEmail++
		}
		names := map[string]bool{}
		for _, a := range us.LoginAttributes {
			for _, v := range e.GetEqualFoldAttributeValues(a) {
				names[strings.ToLower(v)] = true
			}
		}
		for v := range names {
			owners[v]++
		}
	}
	r.add(checkLDAPUsers, SeverityOK, "%s user entries under %s match %s; %d of them have %s", n, us.BaseDN, filter, withEmail, p.set.Attributes.Email)
	if noSubject > 0 {
		r.add(checkLDAPUsers, SeverityError, "%d of %d entries have no usable %s (the subject): those users cannot sign in", noSubject, len(res.Entries), p.set.Attributes.Subject)
	}
	shared := 0
	for _, count := range owners {
		if count > 1 {
			shared++
		}
	}
	if shared > 0 {
		r.add(checkLDAPUsers, SeverityWarning, "%d username(s) match several entries: those sign-ins are refused (narrow user_search.filter or base_dn)", shared)
	}
	return res.Entries
}

// probeGroups reports where groups come from: memberOf on the users read,
// or the group search's base and how many groups it finds.
func (r *Report) probeGroups(c *ldapConn, p *ldapProvider, users []*ldap.Entry) {
	g := p.set.Groups
	switch g.Source {
	case groupsNone:
		r.add(checkLDAPGroups, SeverityOK, "none: groups.source is none")
	case groupsMemberOf:
		with := 0
		for _, e := range users {
			if len(e.GetEqualFoldAttributeValues(g.MemberOfAttribute)) > 0 {
				with++
			}
		}
		if with == 0 && len(users) > 0 {
			r.add(checkLDAPGroups, SeverityWarning, "none of %d users read has %s: on OpenLDAP enable the memberof overlay, or use groups.source search", len(users), g.MemberOfAttribute)
			return
		}
		r.add(checkLDAPGroups, SeverityOK, "%d of %d users read have %s", with, len(users), g.MemberOfAttribute)
	case groupsSearch:
		res, err := c.search(ldap.NewSearchRequest(g.BaseDN, ldapScope(g.Scope), ldap.NeverDerefAliases, ldapSample, p.timeLimit(), false,
			p.set.groupFilter, []string{"1.1"}, nil))
		cut := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
		switch {
		case err != nil && !cut:
			r.add(checkLDAPGroups, SeverityError, "searching %s for %s: %s", g.BaseDN, p.set.groupFilter, describeLDAPError(err))
		case len(res.Entries) == 0:
			r.add(checkLDAPGroups, SeverityWarning, "no group under %s matches %s", g.BaseDN, p.set.groupFilter)
		case cut:
			r.add(checkLDAPGroups, SeverityOK, "at least %d groups under %s match %s", len(res.Entries), g.BaseDN, p.set.groupFilter)
		default:
			r.add(checkLDAPGroups, SeverityOK, "%d groups under %s match %s", len(res.Entries), g.BaseDN, p.set.groupFilter)
		}
	}
}
