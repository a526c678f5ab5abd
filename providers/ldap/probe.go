package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/providers"
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

// probe reports what the broker finds at an LDAP provider's directory:
// each server (its connection and TLS), the service account's bind, the
// kind of server (from the root DSE), the user search (its base, how many
// entries the filter finds, whether they carry the configured attributes,
// usernames that match several) and the groups. It never shows the bind
// password and changes nothing.
func probe(ctx context.Context, cfg providers.Config, _ *http.Client, r *providers.Report) {
	if cfg.LDAP == nil {
		r.Add(checkLDAPConnect, providers.SeverityError, "the provider has no ldap settings")
		return
	}
	s, errs := load(*cfg.LDAP)
	if len(errs) > 0 {
		r.Add(checkLDAPConnect, providers.SeverityError, "the configuration is invalid: %v", errors.Join(errs...))
		return
	}
	pool := newPool(s)
	reachable := false
	for _, u := range s.URLs {
		c, err := pool.dialURL(ctx, u)
		if err != nil {
			r.Add(checkLDAPConnect, providers.SeverityError, "%s", providers.NetworkReason(err))
			continue
		}
		reachable = true
		r.Add(checkLDAPConnect, providers.SeverityOK, "%s answers, %s", u, tlsSummary(c, s))
		c.Close()
	}
	if !reachable {
		return
	}
	err := pool.run(ctx, func(c *conn) error {
		if err := c.asService(); err != nil {
			r.Add(checkLDAPBind, providers.SeverityError, "as %s: %s", s.BindDN, describeLDAPError(errors.Unwrap(err)))
			return nil
		}
		r.Add(checkLDAPBind, providers.SeverityOK, "bound as %s", s.BindDN)
		p := &provider{cfg: cfg, set: s}
		probeServer(r, c, s)
		users := probeUsers(r, c, p)
		probeGroups(r, c, p, users)
		return nil
	})
	if err != nil {
		r.Add(checkLDAPConnect, providers.SeverityError, "the connection failed: %s", describeLDAPError(err))
	}
	pool.flushIdle()
}

// tlsSummary describes a new connection's protection.
func tlsSummary(c *ldap.Conn, s settings) string {
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
func probeServer(r *providers.Report, c *conn, s settings) {
	res, err := c.search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)",
		[]string{"vendorName", "vendorVersion", "supportedCapabilities", "namingContexts"}, nil))
	if err != nil || len(res.Entries) == 0 {
		r.Add(checkLDAPServer, providers.SeverityWarning, "the root DSE is not readable, so the kind of server is unknown")
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
	r.Add(checkLDAPServer, providers.SeverityOK, "%s; naming contexts: %s", kind, strings.Join(dse.GetAttributeValues("namingContexts"), ", "))
	switch {
	case ad && s.Preset != providers.PresetActiveDirectory:
		r.Add(checkLDAPServer, providers.SeverityWarning, "the server is Active Directory, but preset is %s", s.Preset)
	case !ad && s.Preset == providers.PresetActiveDirectory:
		r.Add(checkLDAPServer, providers.SeverityWarning, "preset is active_directory, but the server does not announce Active Directory")
	}
	if s.Groups.Source == groupsSearch && s.Groups.Nested == nestedInChain && !ad {
		r.Add(checkLDAPGroups, providers.SeverityError, "nested: in_chain needs Active Directory's matching rule, which this server does not announce; use nested: walk")
	}
}

// probeUsers reports the user search: its base, how many entries it finds
// (up to ldapSample), whether they carry the subject and email attributes,
// and usernames that several entries share. It returns the entries read.
func probeUsers(r *providers.Report, c *conn, p *provider) []*ldap.Entry {
	us := p.set.UserSearch
	if _, err := c.search(ldap.NewSearchRequest(us.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, p.timeLimit(), false,
		"(objectClass=*)", []string{"1.1"}, nil)); err != nil {
		r.Add(checkLDAPUsers, providers.SeverityError, "user_search.base_dn %s: %s (or the service account may not read it)", us.BaseDN, describeLDAPError(err))
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
		r.Add(checkLDAPUsers, providers.SeverityError, "searching %s for %s: %s", us.BaseDN, filter, describeLDAPError(err))
		return nil
	}
	n := fmt.Sprint(len(res.Entries))
	if cut {
		n = "at least " + n
	}
	if len(res.Entries) == 0 {
		r.Add(checkLDAPUsers, providers.SeverityError, "no entry under %s matches %s: nobody can sign in", us.BaseDN, filter)
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
	r.Add(checkLDAPUsers, providers.SeverityOK, "%s user entries under %s match %s; %d of them have %s", n, us.BaseDN, filter, withEmail, p.set.Attributes.Email)
	if noSubject > 0 {
		r.Add(checkLDAPUsers, providers.SeverityError, "%d of %d entries have no usable %s (the subject): those users cannot sign in", noSubject, len(res.Entries), p.set.Attributes.Subject)
	}
	shared := 0
	for _, count := range owners {
		if count > 1 {
			shared++
		}
	}
	if shared > 0 {
		r.Add(checkLDAPUsers, providers.SeverityWarning, "%d username(s) match several entries: those sign-ins are refused (narrow user_search.filter or base_dn)", shared)
	}
	return res.Entries
}

// probeGroups reports where groups come from: memberOf on the users read,
// or the group search's base and how many groups it finds.
func probeGroups(r *providers.Report, c *conn, p *provider, users []*ldap.Entry) {
	g := p.set.Groups
	switch g.Source {
	case groupsNone:
		r.Add(checkLDAPGroups, providers.SeverityOK, "none: groups.source is none")
	case groupsMemberOf:
		with := 0
		for _, e := range users {
			if len(e.GetEqualFoldAttributeValues(g.MemberOfAttribute)) > 0 {
				with++
			}
		}
		if with == 0 && len(users) > 0 {
			r.Add(checkLDAPGroups, providers.SeverityWarning, "none of %d users read has %s: on OpenLDAP enable the memberof overlay, or use groups.source search", len(users), g.MemberOfAttribute)
			return
		}
		r.Add(checkLDAPGroups, providers.SeverityOK, "%d of %d users read have %s", with, len(users), g.MemberOfAttribute)
	case groupsSearch:
		res, err := c.search(ldap.NewSearchRequest(g.BaseDN, ldapScope(g.Scope), ldap.NeverDerefAliases, ldapSample, p.timeLimit(), false,
			p.set.groupFilter, []string{"1.1"}, nil))
		cut := ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded)
		switch {
		case err != nil && !cut:
			r.Add(checkLDAPGroups, providers.SeverityError, "searching %s for %s: %s", g.BaseDN, p.set.groupFilter, describeLDAPError(err))
		case len(res.Entries) == 0:
			r.Add(checkLDAPGroups, providers.SeverityWarning, "no group under %s matches %s", g.BaseDN, p.set.groupFilter)
		case cut:
			r.Add(checkLDAPGroups, providers.SeverityOK, "at least %d groups under %s match %s", len(res.Entries), g.BaseDN, p.set.groupFilter)
		default:
			r.Add(checkLDAPGroups, providers.SeverityOK, "%d groups under %s match %s", len(res.Entries), g.BaseDN, p.set.groupFilter)
		}
	}
}
