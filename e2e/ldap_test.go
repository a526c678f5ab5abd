//go:build e2e

package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/ldapserver"
)

// ldapFixture: alice in devs, which is in engineering (so engineering only
// by nesting); two entries with the username twin.
const ldapFixture = `dn: ou=contractors,` + ldapserver.Suffix + `
objectClass: organizationalUnit
ou: contractors

dn: uid=alice,` + ldapserver.People + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.org
userPassword: alice-pw

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

dn: cn=devs,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: devs
member: uid=alice,` + ldapserver.People + `

dn: cn=engineering,` + ldapserver.Groups + `
objectClass: groupOfNames
cn: engineering
member: cn=devs,` + ldapserver.Groups

// ldapApp is the upstream: it shows who the broker says the user is, and
// remembers the last request's headers.
type ldapApp struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
}

func newLDAPApp(t *testing.T) *ldapApp {
	a := &ldapApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>app</title><pre id=\"who\">user=%s groups=%s</pre>",
			html.EscapeString(r.Header.Get("X-Auth-Request-User")), html.EscapeString(r.Header.Get("X-Auth-Request-Groups")))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *ldapApp) lastHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// startLDAPBroker starts a directory with ldapFixture and "oidc-broker
// serve" with two providers: corp (the directory over LDAPS, groups by a
// group search that walks nesting, Basic on /api/, the bind password from
// the environment) and a local account admin/admin-pw. /engineering/ needs
// the group engineering. It returns the broker's URL, the directory,
// alice's entryUUID and the app.
func startLDAPBroker(t *testing.T) (string, *demoBroker, *ldapserver.Server, string, *ldapApp) {
	t.Helper()
	d := ldapserver.Start(t)
	if err := d.Add(ldapFixture); err != nil {
		t.Fatal(err)
	}
	root, err := d.Root()
	if err != nil {
		t.Fatal(err)
	}
	res, err := root.Search(ldap.NewSearchRequest("uid=alice,"+ldapserver.People, ldap.ScopeBaseObject, 0, 1, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil))
	root.Close()
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("alice's entryUUID: %v", err)
	}
	aliceID := res.Entries[0].GetAttributeValue("entryUUID")

	app := newLDAPApp(t)
	dir := t.TempDir()
	t.Setenv("E2E_LDAP_BIND_PASSWORD", d.ServicePassword)
	conf := fmt.Sprintf(`listen: 127.0.0.1:0
upstream: %q
log:
  level: debug
routes:
  - path: /engineering/
    groups: {one_of: [engineering]}
providers:
  - id: corp
    name: Company directory
    type: ldap
    basic_auth_paths: ["/api/"]
    ldap:
      urls: [%q]
      ca_file: %q
      bind_dn: %q
      bind_password: ${E2E_LDAP_BIND_PASSWORD}
      user_search:
        base_dn: %q
        filter: (objectClass=inetOrgPerson)
      groups:
        source: search
        base_dn: %q
        nested: walk
  - id: local
    name: Local account
    type: local
    htpasswd_file: %q
`, app.URL, d.LDAPSURL, d.CAFile, ldapserver.ServiceDN, ldapserver.Suffix, ldapserver.Groups, writeHtpasswd(t, dir, "admin", "admin-pw"))
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := startServe(t, path)
	t.Cleanup(func() {
		logs := b.stderr.String()
		for _, secret := range []string{d.ServicePassword, "alice-pw", "twin-pw"} {
			if strings.Contains(logs, secret) {
				t.Errorf("a password reached the broker's log")
			}
		}
	})
	return b.URL, b, d, aliceID, app
}

// TestLDAPSignInWithChromium: a user of the directory opens a page that
// needs a group she has only through a nested group, picks the directory on
// the sign-in page, mistypes her password, corrects it, and reaches the
// page as corp:<entryUUID> with her groups.
func TestLDAPSignInWithChromium(t *testing.T) {
	base, _, _, aliceID, _ := startLDAPBroker(t)
	b := newBrowser(t)

	resp := b.navigate(base + "/engineering/report")
	if !strings.Contains(resp.URL, "/oauth2/sign_in") {
		t.Fatalf("an anonymous visit ended at %s, want the sign-in page", resp.URL)
	}
	b.waitVisible("#idp-local")
	if resp := b.click("#idp-corp"); resp.Status != http.StatusOK || !strings.Contains(resp.URL, "/oauth2/local/corp?state=") {
		t.Fatalf("choosing the directory ended at %s (%d), want its login form", resp.URL, resp.Status)
	}
	if title := b.title(); !strings.Contains(title, "Sign in with Company directory") {
		t.Errorf("form title %q", title)
	}
	b.typeInto("#username", "alice")
	b.typeInto("#password", "not-her-password")
	if resp := b.click("#sign-in"); resp.Status != http.StatusUnauthorized {
		t.Errorf("a wrong password: status %d, want 401", resp.Status)
	}
	if msg := b.text("#login-error"); msg != "The username or password is incorrect." {
		t.Errorf("the form says %q", msg)
	}
	b.typeInto("#password", "alice-pw")
	resp = b.click("#sign-in")
	if want := base + "/engineering/report"; resp.URL != want || resp.Status != http.StatusOK {
		t.Fatalf("signing in ended at %s (%d), want %s", resp.URL, resp.Status, want)
	}
	if who, want := b.text("#who"), "user=corp:"+aliceID+" groups=devs,engineering"; who != want {
		t.Errorf("the app sees %q, want %q", who, want)
	}
}

// ldapLogin is a client that signs in at corp's form, keeping cookies.
type ldapLogin struct {
	t     *testing.T
	base  string
	c     *http.Client
	state string
}

func newLDAPLogin(t *testing.T, base string) *ldapLogin {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &ldapLogin{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// start begins a login at corp and returns /oauth2/start's answer; on a
// redirect to the form it keeps the state.
func (l *ldapLogin) start() (*http.Response, string) {
	resp, body := fetch(l.t, l.c, http.MethodGet, l.base+"/oauth2/start/corp?rd=%2Fhome", nil, nil)
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Path == "/oauth2/local/corp" {
		l.state = loc.Query().Get("state")
	}
	return resp, body
}

func (l *ldapLogin) post(username, password string) (*http.Response, string) {
	return fetch(l.t, l.c, http.MethodPost, l.base+"/oauth2/local/corp",
		url.Values{"state": {l.state}, "username": {username}, "password": {password}}, nil)
}

// basic sends GET path with HTTP Basic credentials.
func basicGet(t *testing.T, base, path, user, password string) (*http.Response, string) {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return fetch(t, &http.Client{Timeout: 20 * time.Second}, http.MethodGet, base+path, nil, http.Header{"Authorization": r.Header["Authorization"]})
}

var corpLink = regexp.MustCompile(`<a [^>]*id="idp-corp"`)

// TestLDAPThroughTheBroker: the refusals through the broker's form (no
// session, the same message), HTTP Basic on an API path, and the directory
// stopped and restarted: the provider is unavailable on the sign-in page
// (and its form and Basic say so) while the local account keeps working,
// and it works again without restarting the broker.
func TestLDAPThroughTheBroker(t *testing.T) {
	base, _, d, aliceID, app := startLDAPBroker(t)

	l := newLDAPLogin(t, base)
	if resp, _ := l.start(); resp.StatusCode != http.StatusFound || l.state == "" {
		t.Fatalf("start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tc := range []struct{ name, username, password string }{
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", "alice-pw"},
		{"empty password", "alice", ""},
		{"star", "*", "alice-pw"},
		{"prefix wildcard with her password", "al*", "alice-pw"},
		{"filter injection", "*)(uid=*", "alice-pw"},
		{"filter injection after her name", "alice)(uid=*", "alice-pw"},
		{"NUL byte", "alice\x00", "alice-pw"},
		{"long unicode", strings.Repeat("ü", 300), "alice-pw"},
		{"two entries match", "twin", "twin-pw"},
	} {
		resp, body := l.post(tc.username, tc.password)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The username or password is incorrect.") {
			t.Errorf("%s: %d, want 401 and the form's message\n%s", tc.name, resp.StatusCode, body)
		}
	}
	if resp, _ := fetch(t, l.c, http.MethodGet, base+"/oauth2/userinfo", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the refusals: userinfo %d, want 401 (no session)", resp.StatusCode)
	}
	if resp, _ := l.post("alice", "alice-pw"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/home" {
		t.Fatalf("alice with her password: %d %q, want 303 to /home", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := fetch(t, l.c, http.MethodGet, base+"/oauth2/userinfo", nil, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"sub":"`+aliceID+`"`) || !strings.Contains(body, `"groups":["devs","engineering"]`) {
		t.Errorf("userinfo: %d %s", resp.StatusCode, body)
	}

	// HTTP Basic on /api/: the user for this request, the password not
	// passed on.
	resp, body := basicGet(t, base, "/api/items", "alice", "alice-pw")
	if h := app.lastHeader(); resp.StatusCode != http.StatusOK || h.Get("X-Auth-Request-User") != "corp:"+aliceID ||
		h.Get("X-Auth-Request-Groups") != "devs,engineering" || h.Get("Authorization") != "" {
		t.Errorf("Basic: %d %s; the app saw %v", resp.StatusCode, body, h)
	}
	for _, pw := range []string{"wrong", ""} {
		if resp, _ := basicGet(t, base, "/api/items", "alice", pw); resp.StatusCode != http.StatusUnauthorized ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("Basic with password %q: %d %q, want 401 with a Basic challenge", pw, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// The directory stops.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	down := newLDAPLogin(t, base)
	down.start()
	if resp, body := down.post("alice", "alice-pw"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Company directory is unavailable") {
		t.Errorf("signing in while the directory is down: %d, want 502 saying it is unavailable\n%s", resp.StatusCode, body)
	}
	if resp, _ := basicGet(t, base, "/api/items", "alice", "alice-pw"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Basic while the directory is down: %d, want 503", resp.StatusCode)
	}
	_, page := fetch(t, l.c, http.MethodGet, base+"/oauth2/sign_in", nil, nil)
	if corpLink.MatchString(page) || !strings.Contains(page, `<span class="reason">Unavailable</span>`) || !regexp.MustCompile(`<a [^>]*id="idp-local"`).MatchString(page) {
		t.Errorf("the sign-in page does not show corp unavailable beside a working local account:\n%s", page)
	}
	if resp, body := newLDAPLogin(t, base).start(); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Company directory is unavailable") {
		t.Errorf("/oauth2/start/corp while down: %d, want 502", resp.StatusCode)
	}
	signInLocal(t, base, "admin", "admin-pw")

	// It comes back: the broker finds it without a restart.
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		if _, page := fetch(t, l.c, http.MethodGet, base+"/oauth2/sign_in", nil, nil); corpLink.MatchString(page) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the directory is back, but the sign-in page still shows it unavailable after 45 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	again := newLDAPLogin(t, base)
	again.start()
	if resp, _ := again.post("alice", "alice-pw"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after the directory came back: %d, want 303", resp.StatusCode)
	}
	if resp, _ := basicGet(t, base, "/api/items", "alice", "alice-pw"); resp.StatusCode != http.StatusOK {
		t.Errorf("Basic after the directory came back: %d", resp.StatusCode)
	}
}
