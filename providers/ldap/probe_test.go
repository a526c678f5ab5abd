package ldap

import (
	"context"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/ldapserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestProbeLDAP: check --online connects to each server, binds with the
// service account, and reports what it found: the kind of server, how many
// users the search finds and whether they can sign in, usernames shared by
// several entries, and the groups. A refused service account is an error;
// its password is never shown.
func TestProbeLDAP(t *testing.T) {
	d := sharedDirectory(t)
	lines := func(r providers.Report) string {
		var got []string
		for _, f := range r.Findings {
			got = append(got, f.Severity.String()+" "+f.Check+": "+f.Message)
		}
		return strings.Join(got, "\n")
	}
	for _, tc := range []struct {
		name  string
		edit  func(*providers.LDAPConfig)
		worst providers.Severity
		want  []string
	}{
		{"found", func(l *providers.LDAPConfig) { l.URLs = []string{d.LDAPSURL, "ldaps://127.0.0.1:1"} }, providers.SeverityError, []string{
			"ok connect: " + d.LDAPSURL + ` answers, LDAPS, TLS 1.3, certificate of "localhost" verified against ` + d.CAFile,
			"error connect: ldaps://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused",
			"ok bind: bound as " + ldapserver.ServiceDN,
			"ok server: an LDAP server; naming contexts: " + ldapserver.Suffix,
			"ok user_search: 5 user entries under dc=example,dc=org match (&(objectClass=inetOrgPerson)(uid=*)); 1 of them have mail",
			"warning user_search: 1 username(s) match several entries",
			"ok groups: 2 of 5 users read have memberOf",
		}},
		{"StartTLS and a group search", func(l *providers.LDAPConfig) {
			l.URLs, l.StartTLS = []string{d.URL}, true
			l.Groups = providers.LDAPGroups{Source: "search", BaseDN: ldapserver.Groups, Nested: "in_chain"}
		}, providers.SeverityError, []string{
			"ok connect: " + d.URL + " answers, StartTLS, TLS 1.3",
			"error groups: nested: in_chain needs Active Directory's matching rule",
			"ok groups: 6 groups under ou=groups,dc=example,dc=org match (objectClass=groupOfNames)",
		}},
		{"no subject", func(l *providers.LDAPConfig) { l.Attributes.Subject = "employeeNumber" }, providers.SeverityError, []string{
			"error user_search: 5 of 5 entries have no usable employeeNumber (the subject): those users cannot sign in",
		}},
		{"a base that does not exist", func(l *providers.LDAPConfig) { l.UserSearch.BaseDN = "ou=nobody," + ldapserver.Suffix }, providers.SeverityError, []string{
			"error user_search: user_search.base_dn ou=nobody,dc=example,dc=org: LDAP result 32 (No Such Object)",
		}},
		{"the service account refused", func(l *providers.LDAPConfig) { l.BindPassword = "wrong-service-password" }, providers.SeverityError, []string{
			"error bind: as " + ldapserver.ServiceDN + ": LDAP result 49 (Invalid Credentials)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testTypes.Probe(context.Background(), ldapConfig(d, tc.edit), nil)
			got := lines(r)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no finding %q in:\n%s", w, got)
				}
			}
			if r.Worst() != tc.worst || r.Type != providers.TypeLDAP {
				t.Errorf("worst %v, type %s; want %v", r.Worst(), r.Type, tc.worst)
			}
			if strings.Contains(got, d.ServicePassword) || strings.Contains(got, "wrong-service-password") {
				t.Errorf("the report shows a password:\n%s", got)
			}
		})
	}
}

// TestLDAPReach: the readiness check's view of an LDAP provider.
func TestLDAPReach(t *testing.T) {
	d := sharedDirectory(t)
	p := openLDAPProvider(t, ldapConfig(d), nil)
	if k := providers.KnownReachability(p); k != providers.ReachUnknown {
		t.Errorf("before any contact: %v, want unknown", k)
	}
	if err := providers.Reach(t.Context(), p); err != nil {
		t.Errorf("Reach: %v", err)
	}
	bad := openLDAPProvider(t, ldapConfig(d, func(l *providers.LDAPConfig) { l.BindPassword = "wrong" }), nil)
	if err := providers.Reach(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "corp: directory: the service account's bind failed") {
		t.Errorf("Reach with a refused service account: %v", err)
	}
}
