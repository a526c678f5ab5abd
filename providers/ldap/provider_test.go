package ldap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/ldapserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The tests of type ldap run against a real OpenLDAP slapd (package
// ldapserver). The tests that only read share one directory, started on
// first use and stopped by TestMain; those that stop, pause or restart it
// start their own.

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != nil {
		shared.dir.Close()
		os.RemoveAll(shared.tmp)
	}
	os.Exit(code)
}

var shared struct {
	once sync.Once
	dir  *ldapserver.Server
	tmp  string
	err  error
}

// sharedDirectory is the directory with the fixture's entries.
func sharedDirectory(t *testing.T) *ldapserver.Server {
	t.Helper()
	shared.once.Do(func() {
		if shared.tmp, shared.err = os.MkdirTemp("", "providers-slapd-"); shared.err != nil {
			return
		}
		if shared.dir, shared.err = ldapserver.Launch(shared.tmp); shared.err != nil {
			return
		}
		shared.err = shared.dir.Add(fixture)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir
}

// carolGUID is carol's objectGUID: its bytes 4dgBM8Dm/kGorI7E/gyz4w== as
// Microsoft writes them (Python: uuid.UUID(bytes_le=...)).
const carolGUID = "3301d8e1-e6c0-41fe-a8ac-8ec4fe0cb3e3"

// fixture: alice (devs, which is in engineering, which is in company;
// staff by posixGroup; auditors by groupOfUniqueNames), bob (in loop-b,
// which is in loop-a, which is in loop-b), two entries with the username twin, émilie, and carol shaped
// like an Active Directory user.
var fixture = `dn: ou=contractors,` + ldapserver.Suffix + `
objectClass: organizationalUnit
ou: contractors

dn: uid=alice,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.org
userPassword: alice-pw

dn: uid=bob,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-pw

dn: uid=twin,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: One
userPassword: twin-pw

dn: uid=twin,ou=contractors,` + ldapserver.Suffix + `
objectClass: inetOrgPerson
uid: twin
cn: Twin Two
sn: Two
userPassword: twin-pw

dn: uid=émilie,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: émilie
cn: Émilie du Châtelet
sn: du Châtelet
userPassword: émilie-pw

dn: cn=carol,` + ldapserver.People + `
objectClass: inetOrgPerson
objectClass: testADUser
cn: carol
sn: C
displayName: Carol Shannon
sAMAccountName: carol
userPrincipalName: carol@corp.example.org
objectGUID:: 4dgBM8Dm/kGorI7E/gyz4w==
mail: carol@corp.example.org
userPassword: carol-pw

dn: cn=devs,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: devs
member: uid=alice,` + ldapserver.People + `

dn: cn=engineering,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: engineering
member: cn=devs,` + ldapserver.Groups + `

dn: cn=company,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: company
member: cn=engineering,` + ldapserver.Groups + `

dn: cn=loop-a,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: loop-a
member: cn=loop-b,` + ldapserver.Groups + `

dn: cn=loop-b,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: loop-b
member: cn=loop-a,` + ldapserver.Groups + `
member: uid=bob,` + ldapserver.People + `

dn: cn=ad-admins,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: ad-admins
member: cn=carol,` + ldapserver.People + `

dn: cn=staff,` + ldapserver.Groups + `
objectClass: posixGroup
cn: staff
gidNumber: 5000
memberUid: alice

dn: cn=auditors,` + ldapserver.Groups + `
objectClass: groupOfUniqueNames
cn: auditors
uniqueMember: uid=alice,` + ldapserver.People

// ldapConfig is a provider of type ldap for d over LDAPS, searching the
// whole suffix (where twin has two entries), changed by edit.
func ldapConfig(d *ldapserver.Server, edit ...func(*providers.LDAPConfig)) providers.Config {
	l := &providers.LDAPConfig{
		URLs:         []string{d.LDAPSURL},
		CAFile:       d.CAFile,
		BindDN:       ldapserver.ServiceDN,
		BindPassword: d.ServicePassword,
		UserSearch:   providers.LDAPUserSearch{BaseDN: ldapserver.Suffix, Filter: "(objectClass=inetOrgPerson)"},
	}
	for _, e := range edit {
		e(l)
	}
	return providers.Config{ID: "corp", Name: "Corp directory", Type: providers.TypeLDAP, LDAP: l}
}

// logBuffer collects a provider's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openLDAPProvider opens cfg with a logger into logs (may be nil).
func openLDAPProvider(t *testing.T, cfg providers.Config, logs *logBuffer) *provider {
	t.Helper()
	log := quiet
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := testTypes.Open(cfg, providers.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*provider)
}

// entryUUID reads an entry's entryUUID as the directory's root.
func entryUUID(t *testing.T, d *ldapserver.Server, dn string) string {
	t.Helper()
	c, err := d.Root()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, 0, 1, 0, false, "(objectClass=*)", []string{"entryUUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the entryUUID of %s: %v", dn, err)
	}
	return res.Entries[0].GetAttributeValue("entryUUID")
}

// TestLDAPSignIn: alice signs in over LDAPS, StartTLS and plain LDAP on
// loopback; the subject is her entryUUID, never the username; name and
// email come from her entry, the email unverified unless configured.
func TestLDAPSignIn(t *testing.T) {
	d := sharedDirectory(t)
	want := entryUUID(t, d, "uid=alice,"+ldapserver.People)
	for _, tc := range []struct {
		name string
		edit func(*providers.LDAPConfig)
	}{
		{"LDAPS", func(*providers.LDAPConfig) {}},
		{"StartTLS", func(l *providers.LDAPConfig) { l.URLs, l.StartTLS = []string{d.URL}, true }},
		{"StartTLS by host name", func(l *providers.LDAPConfig) {
			l.URLs, l.StartTLS, l.ServerName = []string{d.URL}, true, "localhost"
		}},
		{"plain LDAP on loopback", func(l *providers.LDAPConfig) { l.URLs, l.CAFile = []string{d.URL}, "" }},
		{"a dead server first", func(l *providers.LDAPConfig) { l.URLs = []string{"ldaps://127.0.0.1:1", d.LDAPSURL} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openLDAPProvider(t, ldapConfig(d, tc.edit), nil)
			res, err := p.Authenticate(t.Context(), "alice", "alice-pw")
			if err != nil {
				t.Fatal(err)
			}
			id := res.Identity
			if id.Provider != "corp" || id.Subject != want || id.PreferredUsername != "alice" || id.Name != "Alice Liddell" ||
				id.Email != "alice@example.org" || id.EmailVerified || !slices.Equal(id.Groups, []string{"devs"}) {
				t.Errorf("identity = %+v, want sub %s, alice, Alice Liddell, unverified alice@example.org, groups [devs]", id, want)
			}
			if st := p.Status(); !st.Available {
				t.Errorf("status after a sign-in: %+v", st)
			}
		})
	}

	t.Run("email_verified and the username typed differently", func(t *testing.T) {
		p := openLDAPProvider(t, ldapConfig(d, func(l *providers.LDAPConfig) { l.EmailVerified = true }), nil)
		res, err := p.Authenticate(t.Context(), "ALICE", "alice-pw")
		if err != nil {
			t.Fatal(err)
		}
		if id := res.Identity; !id.EmailVerified || id.VerifiedEmail() != "alice@example.org" || id.PreferredUsername != "alice" || id.Subject != want {
			t.Errorf("identity = %+v, want the verified email, the directory's username alice and the same subject", id)
		}
	})
	t.Run("unicode username", func(t *testing.T) {
		p := openLDAPProvider(t, ldapConfig(d), nil)
		res, err := p.Authenticate(t.Context(), "émilie", "émilie-pw")
		if err != nil {
			t.Fatal(err)
		}
		if id := res.Identity; id.PreferredUsername != "émilie" || id.Name != "Émilie du Châtelet" || id.Email != "" {
			t.Errorf("identity = %+v", id)
		}
	})
}

// TestLDAPRefusals: every refusal is ErrInvalidCredentials and leaves the
// provider available. The empty password is refused although this slapd,
// like many servers, answers an unauthenticated bind with success; the
// injected usernames carry alice's password, so a filter they could
// change would find her and sign them in.
func TestLDAPRefusals(t *testing.T) {
	d := sharedDirectory(t)
	conn, err := ldap.DialURL(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: "uid=alice," + ldapserver.People, AllowEmptyPassword: true}); err != nil {
		t.Fatalf("the directory should accept an unauthenticated bind, as many do, for this test to mean something: %v", err)
	}
	conn.Close()

	logs := &logBuffer{}
	p := openLDAPProvider(t, ldapConfig(d), logs)
	for _, tc := range []struct{ name, username, password string }{
		{"wrong password", "alice", "not-alice-pw"},
		{"unknown user", "mallory", "alice-pw"},
		{"empty password", "alice", ""},
		{"empty username", "", "alice-pw"},
		{"star", "*", "alice-pw"},
		{"prefix wildcard", "al*", "alice-pw"},
		{"filter injection", "*)(uid=*", "alice-pw"},
		{"filter injection closing the term", "alice)(uid=*", "alice-pw"},
		{"filter injection with or", "alice)(|(uid=*)", "alice-pw"},
		{"NUL byte", "alice\x00", "alice-pw"},
		{"escaped NUL as text", `alice\00`, "alice-pw"},
		{"control character", "alice\n", "alice-pw"},
		{"invalid UTF-8", "alice\xff", "alice-pw"},
		{"long unicode", strings.Repeat("é", 200), "alice-pw"},
		{"two entries match", "twin", "twin-pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Authenticate(t.Context(), tc.username, tc.password)
			if !errors.Is(err, providers.ErrInvalidCredentials) || res != nil {
				t.Fatalf("Authenticate(%q) = %+v, %v; want ErrInvalidCredentials", tc.username, res, err)
			}
		})
	}
	if st := p.Status(); !st.Available {
		t.Errorf("refused sign-ins made the provider unavailable: %+v", st)
	}
	if !strings.Contains(logs.String(), "several entries match the username") {
		t.Errorf("the ambiguous username is not logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), d.ServicePassword) || strings.Contains(logs.String(), "alice-pw") {
		t.Errorf("a password reached the log:\n%s", logs)
	}
}

// TestLDAPGroups: the groups of each source and nesting, mapped to names
// or DNs, with the prefix and static groups. Only the service account may
// read the groups (ldapserver's ACL), so a group search right after the
// user's bind on the same connection proves that the connection was bound
// as the service account again.
func TestLDAPGroups(t *testing.T) {
	d := sharedDirectory(t)
	dn := func(cn string) string { return "cn=" + cn + "," + ldapserver.Groups }
	search := func(g providers.LDAPGroups) func(*providers.LDAPConfig) {
		return func(l *providers.LDAPConfig) { g.Source, g.BaseDN = groupsSearch, ldapserver.Groups; l.Groups = g }
	}
	for _, tc := range []struct {
		name  string
		user  string
		edit  func(*providers.LDAPConfig)
		claim providers.ClaimsConfig
		want  []string
	}{
		{"memberOf", "alice", func(*providers.LDAPConfig) {}, providers.ClaimsConfig{}, []string{"devs"}},
		{"memberOf as DNs", "alice", func(l *providers.LDAPConfig) { l.Groups.Relay = "dn" }, providers.ClaimsConfig{}, []string{dn("devs")}},
		{"memberOf with prefix and static groups", "alice", func(*providers.LDAPConfig) {},
			providers.ClaimsConfig{GroupPrefix: "corp:", StaticGroups: []string{"employees"}}, []string{"corp:devs", "employees"}},
		{"none", "alice", func(l *providers.LDAPConfig) { l.Groups.Source = groupsNone }, providers.ClaimsConfig{}, nil},
		{"groupOfNames, direct", "alice", search(providers.LDAPGroups{}), providers.ClaimsConfig{}, []string{"devs"}},
		{"groupOfNames, nested by walking", "alice", search(providers.LDAPGroups{Nested: nestedWalk}), providers.ClaimsConfig{},
			[]string{"devs", "engineering", "company"}},
		{"a cycle of groups ends", "bob", search(providers.LDAPGroups{Nested: nestedWalk}), providers.ClaimsConfig{}, []string{"loop-b", "loop-a"}},
		{"nested as DNs", "bob", search(providers.LDAPGroups{Nested: nestedWalk, Relay: "dn"}), providers.ClaimsConfig{}, []string{dn("loop-b"), dn("loop-a")}},
		{"groupOfUniqueNames", "alice", search(providers.LDAPGroups{Filter: "(objectClass=groupOfUniqueNames)", MemberAttribute: "uniqueMember"}),
			providers.ClaimsConfig{}, []string{"auditors"}},
		{"posixGroup", "alice", search(providers.LDAPGroups{Filter: "(objectClass=posixGroup)", MemberAttribute: "memberUid", MemberValue: "username"}),
			providers.ClaimsConfig{}, []string{"staff"}},
		{"no groups", "émilie", func(*providers.LDAPConfig) {}, providers.ClaimsConfig{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ldapConfig(d, tc.edit)
			cfg.Claims = tc.claim
			p := openLDAPProvider(t, cfg, nil)
			res, err := p.Authenticate(t.Context(), tc.user, tc.user+"-pw")
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Identity.Groups; !slices.Equal(got, tc.want) || res.Identity.GroupsIncomplete {
				t.Errorf("groups = %q (incomplete %v), want %q", got, res.Identity.GroupsIncomplete, tc.want)
			}
		})
	}
}

// TestLDAPActiveDirectoryPreset: an entry shaped like an Active Directory
// user signs in with its sAMAccountName or its userPrincipalName; the
// subject is its binary objectGUID in Microsoft's text form; the name is
// displayName. (The preset's own user filter names AD's objectCategory,
// which slapd does not have, so the test narrows by its own class.)
func TestLDAPActiveDirectoryPreset(t *testing.T) {
	d := sharedDirectory(t)
	p := openLDAPProvider(t, ldapConfig(d, func(l *providers.LDAPConfig) {
		l.Preset, l.UserSearch.Filter = providers.PresetActiveDirectory, "(objectClass=testADUser)"
	}), nil)
	for _, login := range []string{"carol", "carol@corp.example.org", "CAROL"} {
		res, err := p.Authenticate(t.Context(), login, "carol-pw")
		if err != nil {
			t.Fatalf("%s: %v", login, err)
		}
		if id := res.Identity; id.Subject != carolGUID || id.PreferredUsername != "carol" || id.Name != "Carol Shannon" ||
			id.Email != "carol@corp.example.org" || !slices.Equal(id.Groups, []string{"ad-admins"}) {
			t.Errorf("%s: identity = %+v", login, id)
		}
	}
	if _, err := p.Authenticate(t.Context(), "alice", "alice-pw"); !errors.Is(err, providers.ErrInvalidCredentials) {
		t.Errorf("alice, outside the user filter: %v, want ErrInvalidCredentials", err)
	}
}

// TestLDAPEntryWithoutSubject: an entry without the subject attribute
// cannot sign in; it is that entry's fault, so the provider stays
// available.
func TestLDAPEntryWithoutSubject(t *testing.T) {
	d := sharedDirectory(t)
	logs := &logBuffer{}
	p := openLDAPProvider(t, ldapConfig(d, func(l *providers.LDAPConfig) { l.Attributes.Subject = "employeeNumber" }), logs)
	_, err := p.Authenticate(t.Context(), "alice", "alice-pw")
	var unavailable *providers.UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err = %v, want an *UnavailableError", err)
	}
	if st := p.Status(); !st.Available {
		t.Errorf("one entry's problem made the provider unavailable: %+v", st)
	}
	if !strings.Contains(logs.String(), "has 0 values of the subject attribute employeeNumber") {
		t.Errorf("the log does not say why:\n%s", logs)
	}
}

func TestFormatGUID(t *testing.T) {
	b := []byte{0xe1, 0xd8, 0x01, 0x33, 0xc0, 0xe6, 0xfe, 0x41, 0xa8, 0xac, 0x8e, 0xc4, 0xfe, 0x0c, 0xb3, 0xe3}
	if got := formatGUID(b); got != carolGUID {
		t.Errorf("formatGUID = %s, want %s", got, carolGUID)
	}
}

// TestLDAPAuthCodeURL: the broker's own form, as for a local provider.
func TestLDAPAuthCodeURL(t *testing.T) {
	p := openLDAPProvider(t, ldapConfig(sharedDirectory(t)), nil)
	got, err := p.AuthCodeURL(context.Background(), providers.AuthRequest{State: "s1", RedirectURI: "https://b.example/oauth2/callback/corp", FormURL: "https://b.example/oauth2/local/corp", LoginHint: "alice"})
	if want := "https://b.example/oauth2/local/corp?state=s1&username=alice"; err != nil || got != want {
		t.Errorf("AuthCodeURL = %q, %v; want %q", got, err, want)
	}
	if _, err := p.Exchange(context.Background(), providers.Callback{}); !errors.Is(err, providers.ErrNoCallback) {
		t.Errorf("Exchange: %v", err)
	}
}

func Example() {
	cfg := providers.Config{ID: "corp", Name: "Company account", Type: providers.TypeLDAP, LDAP: &providers.LDAPConfig{
		Preset:       providers.PresetActiveDirectory,
		URLs:         []string{"ldaps://dc1.corp.example.com", "ldaps://dc2.corp.example.com"},
		BindDN:       "CN=oidc-broker,OU=Service Accounts,DC=corp,DC=example,DC=com",
		BindPassword: "from ${LDAP_BIND_PASSWORD}",
		UserSearch:   providers.LDAPUserSearch{BaseDN: "OU=Staff,DC=corp,DC=example,DC=com"},
		Groups:       providers.LDAPGroups{Source: "search", BaseDN: "OU=Groups,DC=corp,DC=example,DC=com", Nested: "in_chain"},
	}}
	fmt.Println(validate(cfg))
	// Output: <nil>
}
