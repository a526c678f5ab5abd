package ldap

import (
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// equality checks that p is (attr=value), value compared byte for byte.
func equality(t *testing.T, p *ber.Packet, attr, value string) {
	t.Helper()
	if p.Tag != ldap.FilterEqualityMatch || len(p.Children) != 2 {
		t.Fatalf("term is %s with %d children, want an equality match", ldap.FilterMap[uint64(p.Tag)], len(p.Children))
	}
	if got, _ := p.Children[0].Value.(string); got != attr {
		t.Fatalf("attribute %q, want %q", got, attr)
	}
	if got, _ := p.Children[1].Value.(string); got != value {
		t.Fatalf("value %q, want %q", got, value)
	}
}

// FuzzUserFilter: whatever the username, the user search's filter parses,
// keeps its structure (the configured filter AND one equality match per
// login attribute) and compares each attribute with exactly the username:
// no username can widen the search (RFC 4515 escaping).
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "al*", "*)(uid=*", "alice)(|(uid=*)", "\x00", `\00`, `\2a`, "(", ")", `\`,
		"a\xffb", "DOMAIN\\alice", "alice@example.org", strings.Repeat("é", 300), "émilie"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, username string) {
		filter := userFilter("(objectClass=person)", []string{"uid", "mail"}, username)
		p, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("userFilter(%q) = %q does not parse: %v", username, filter, err)
		}
		if p.Tag != ldap.FilterAnd || len(p.Children) != 2 {
			t.Fatalf("%q is not (&extra(|...))", filter)
		}
		equality(t, p.Children[0], "objectClass", "person")
		or := p.Children[1]
		if or.Tag != ldap.FilterOr || len(or.Children) != 2 {
			t.Fatalf("%q: the second term is not an OR of two", filter)
		}
		equality(t, or.Children[0], "uid", username)
		equality(t, or.Children[1], "mail", username)

		one, err := ldap.CompileFilter(userFilter("", []string{"uid"}, username))
		if err != nil {
			t.Fatal(err)
		}
		equality(t, one, "uid", username)

		group, err := ldap.CompileFilter(memberFilter("(objectClass=groupOfNames)", "member", []string{username, "cn=x"}))
		if err != nil {
			t.Fatal(err)
		}
		equality(t, group.Children[1].Children[0], "member", username)
	})
}

// TestLDAPFilters: the filters as the directory receives them.
func TestLDAPFilters(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{userFilter("", []string{"uid"}, "alice"), "(uid=alice)"},
		{userFilter("(objectClass=inetOrgPerson)", []string{"uid"}, "*)(uid=*"), `(&(objectClass=inetOrgPerson)(uid=\2a\29\28uid=\2a))`},
		{userFilter("", []string{"sAMAccountName", "userPrincipalName"}, `CORP\jdoe`), `(|(sAMAccountName=CORP\5cjdoe)(userPrincipalName=CORP\5cjdoe))`},
		{userFilter("", []string{"uid"}, "é"), `(uid=\c3\a9)`},
		{memberFilter("(objectClass=groupOfNames)", "member", []string{"cn=a(1),dc=x", "cn=b,dc=x"}),
			`(&(objectClass=groupOfNames)(|(member=cn=a\281\29,dc=x)(member=cn=b,dc=x)))`},
		{inChainFilter("(objectClass=group)", "member", `CN=Doe\, John,OU=Staff,DC=corp`),
			`(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Doe\5c, John,OU=Staff,DC=corp))`},
	} {
		if tc.got != tc.want {
			t.Errorf("filter %s, want %s", tc.got, tc.want)
		}
		if _, err := ldap.CompileFilter(tc.got); err != nil {
			t.Errorf("%s does not parse: %v", tc.got, err)
		}
	}
}

func TestPlausibleUsername(t *testing.T) {
	for u, want := range map[string]bool{
		"alice": true, "émilie": true, "CORP\\jdoe": true, "*": true, strings.Repeat("a", 256): true,
		"": false, "a\x00": false, "a\tb": false, "a\u0085": false, "\xff": false, strings.Repeat("a", 257): false, strings.Repeat("é", 129): false,
	} {
		if got := plausibleUsername(u); got != want {
			t.Errorf("plausibleUsername(%q) = %v", u, got)
		}
	}
}
