package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/ldapserver"
)

// fakeIdP serves a discovery document (edit changes the good one) and a
// JWK Set with a real EC P-256 public key.
func fakeIdP(t *testing.T, edit func(srvURL string, doc map[string]any)) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(doc)
		case "/keys":
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	doc = map[string]any{
		"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
		"jwks_uri": srv.URL + "/keys", "end_session_endpoint": srv.URL + "/logout",
		"id_token_signing_alg_values_supported": []string{"ES256"}, "code_challenge_methods_supported": []string{"S256"},
		"backchannel_logout_supported": true, "backchannel_logout_session_supported": true,
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic"},
		"authorization_response_iss_parameter_supported": true,
	}
	if edit != nil {
		edit(srv.URL, doc)
	}
	return srv.URL
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// onlineConfig writes a configuration with one OpenID provider per issuer
// (ids in order), the client secret from $IDP_SECRET.
func onlineConfig(t *testing.T, ids, issuers []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("providers:\n")
	for i, id := range ids {
		fmt.Fprintf(&b, "  - id: %s\n    issuer: %s\n    client_id: broker\n    client_secret: ${IDP_SECRET}\n", id, issuers[i])
	}
	return writeConfig(t, b.String())
}

func TestCheckOnline(t *testing.T) {
	t.Setenv("IDP_SECRET", "very-secret-client-secret")
	good := fakeIdP(t, nil)
	mismatch := fakeIdP(t, func(u string, doc map[string]any) { doc["issuer"] = u + "/" })
	nologout := fakeIdP(t, func(_ string, doc map[string]any) {
		delete(doc, "end_session_endpoint")
		delete(doc, "backchannel_logout_supported")
	})
	hs256 := fakeIdP(t, func(_ string, doc map[string]any) { doc["id_token_signing_alg_values_supported"] = []string{"HS256"} })
	gone := closedPort(t)

	t.Run("all usable", func(t *testing.T) {
		path := onlineConfig(t, []string{"good", "nologout"}, []string{good, nologout})
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", path, "--online"}, &out, &errb); code != 0 {
			t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
		}
		wantLines(t, out.String(),
			`^.*broker\.yaml: ok \(2 providers\)$`,
			`^good \(oidc, `+regexp.QuoteMeta(good)+`\)$`,
			`^  ok       discovery: `+regexp.QuoteMeta(good)+`/\.well-known/openid-configuration answered HTTP 200$`,
			`^  ok       issuer: the document's issuer equals the configured one$`,
			`^  ok       id_token_signing_algs: offered: ES256; accepted: ES256$`,
			`^  ok       jwks: `+regexp.QuoteMeta(good)+`/keys: 1 usable signing key\(s\)$`,
			`^nologout \(oidc, `,
			`^  warning  end_session: no end_session_endpoint`,
			`^  warning  backchannel_logout: not supported`,
			`^online: 2 providers: 1 ok, 1 with warnings, 0 with errors$`,
		)
	})

	t.Run("errors", func(t *testing.T) {
		path := onlineConfig(t, []string{"good", "mismatch", "nologout", "hs256", "gone"}, []string{good, mismatch, nologout, hs256, gone})
		var out, errb bytes.Buffer
		start := time.Now()
		if code := run([]string{"check", "--config", path, "--online", "--timeout", "3s"}, &out, &errb); code != 1 {
			t.Fatalf("exit %d, want 1:\n%s%s", code, out.String(), errb.String())
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
		wantLines(t, out.String(),
			`^mismatch \(oidc, `,
			`^  error    issuer: the document says "`+regexp.QuoteMeta(mismatch)+`/", the configuration says "`+regexp.QuoteMeta(mismatch)+`"`,
			`^  error    id_token_signing_algs: offered: HS256; none is one the broker accepts`,
			`^gone \(oidc, `+regexp.QuoteMeta(gone)+`\)$`,
			`^  error    discovery: `+regexp.QuoteMeta(gone)+`/\.well-known/openid-configuration is unreachable: dial tcp .*refused$`,
			`^online: 5 providers: 1 ok, 1 with warnings, 3 with errors$`,
		)
		if strings.Contains(out.String()+errb.String(), "very-secret-client-secret") {
			t.Error("the client secret was printed")
		}
	})

	t.Run("json", func(t *testing.T) {
		path := onlineConfig(t, []string{"good", "gone"}, []string{good, gone})
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", path, "--online", "--json"}, &out, &errb); code != 1 {
			t.Fatalf("exit %d, want 1:\n%s%s", code, out.String(), errb.String())
		}
		var res struct {
			OK        bool `json:"ok"`
			Providers []struct {
				Provider string `json:"provider"`
				Findings []struct{ Check, Severity, Message string }
			} `json:"providers"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if res.OK || len(res.Providers) != 2 || res.Providers[1].Provider != "gone" {
			t.Fatalf("result: %+v", res)
		}
		if f := res.Providers[1].Findings; len(f) != 1 || f[0].Check != "discovery" || f[0].Severity != "error" {
			t.Errorf("gone: %+v", f)
		}
		if f := res.Providers[0].Findings; len(f) != 9 || f[8].Check != "jwks" || f[8].Severity != "ok" {
			t.Errorf("good: %+v", f)
		}
		if strings.Contains(out.String(), "very-secret-client-secret") {
			t.Error("the client secret was printed")
		}
	})

	t.Run("offline stays offline", func(t *testing.T) {
		path := onlineConfig(t, []string{"gone"}, []string{gone})
		var out bytes.Buffer
		if code := run([]string{"check", "--config", path}, &out, &bytes.Buffer{}); code != 0 || strings.Contains(out.String(), "online:") {
			t.Errorf("exit %d:\n%s", code, out.String())
		}
	})

	t.Run("bad timeout", func(t *testing.T) {
		var errb bytes.Buffer
		if code := run([]string{"check", "--online", "--timeout", "0s"}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "--timeout") {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	})
}

// TestCheckOnlineLocalAndOAuth2: providers without discovery.
func TestCheckOnlineLocalAndOAuth2(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	defer api.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := writeConfig(t, "alice:"+string(hash)+"\n")
	path := writeConfig(t, fmt.Sprintf(`providers:
  - id: gh
    type: oauth2
    client_id: c
    client_secret: s
    authorization_endpoint: %[1]s/login/oauth/authorize
    token_endpoint: %[1]s/login/oauth/access_token
    userinfo_endpoint: %[1]s/user
    claims: {subject: id, username: login}
  - id: staff
    type: local
    htpasswd_file: %[2]s
`, api.URL, htpasswd))
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", path, "--online"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	wantLines(t, out.String(),
		`^gh \(oauth2\)$`,
		`^  ok       discovery: nothing to discover`,
		`^  ok       token_endpoint: `+regexp.QuoteMeta(api.URL)+`/login/oauth/access_token answers \(HTTP 404\)$`,
		`^staff \(local\)$`,
		`^  ok       htpasswd_file: local accounts: nothing to reach`,
	)
}

// TestCheckOnlineLDAP: check --online binds to a real slapd with the
// service account (its password from the environment) and reports what it
// found; a refused service account fails the check, and the password is
// never printed.
func TestCheckOnlineLDAP(t *testing.T) {
	d := ldapserver.Start(t)
	if err := d.Add("dn: uid=alice," + ldapserver.People + "\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nuserPassword: pw\n\n" +
		"dn: cn=staff," + ldapserver.Groups + "\nobjectClass: groupOfNames\ncn: staff\nmember: uid=alice," + ldapserver.People); err != nil {
		t.Fatal(err)
	}
	config := func(password string) string {
		t.Setenv("LDAP_BIND_PASSWORD", password)
		return writeConfig(t, fmt.Sprintf(`providers:
  - id: corp
    type: ldap
    ldap:
      urls: [%q]
      start_tls: true
      ca_file: %q
      bind_dn: %q
      bind_password: ${LDAP_BIND_PASSWORD}
      user_search: {base_dn: %q}
`, d.URL, d.CAFile, ldapserver.ServiceDN, ldapserver.People))
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", config(d.ServicePassword), "--online"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	wantLines(t, out.String(),
		`^corp \(ldap\)$`,
		`^  ok       connect: `+regexp.QuoteMeta(d.URL)+` answers, StartTLS, TLS 1\.[23], certificate of "localhost" verified against `,
		`^  ok       bind: bound as `+regexp.QuoteMeta(ldapserver.ServiceDN)+`$`,
		`^  ok       user_search: 1 user entries under `+regexp.QuoteMeta(ldapserver.People)+` match \(uid=\*\)`,
		`^  ok       groups: 1 of 1 users read have memberOf$`,
		`^online: 1 providers: 1 ok, 0 with warnings, 0 with errors$`,
	)
	out.Reset()
	if code := run([]string{"check", "--config", config("not-the-service-password"), "--online"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d with a wrong bind password, want 1:\n%s", code, out.String())
	}
	wantLines(t, out.String(), `^  error    bind: as `+regexp.QuoteMeta(ldapserver.ServiceDN)+`: LDAP result 49 \(Invalid Credentials\)$`)
	if all := out.String() + errb.String(); strings.Contains(all, "not-the-service-password") || strings.Contains(all, d.ServicePassword) {
		t.Error("a bind password was printed")
	}
}

// TestCheckReportsEveryLDAPProblem: an ldap provider's mistakes are reported
// together, each with its line and field, and the bind password is not
// printed.
func TestCheckReportsEveryLDAPProblem(t *testing.T) {
	path := writeConfig(t, `providers:
  - id: corp
    type: ldap
    client_id: x
    ldap:
      urls: [ldap://dc1.corp.example.com]
      bind_dn: broker
      bind_password: not-printed-bind-password
      user_search:
        scope: all
        filter: "uid=x"
      attributes:
        subject: uid
      groups:
        source: search
        nested: deep
`)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out.String(), errb.String())
	}
	wantLines(t, errb.String(),
		`: 9 problem\(s\):$`,
		`^  line 4: providers\[0\]\.client_id: is not used by providers of type ldap$`,
		`^  line 6: providers\[0\]\.ldap\.urls\[0\]: "ldap://dc1\.corp\.example\.com" would send passwords in clear text`,
		`^  line 7: providers\[0\]\.ldap\.bind_dn: "broker" is not a DN`,
		`^  line 10: providers\[0\]\.ldap\.user_search\.base_dn: is required$`,
		`^  line 10: providers\[0\]\.ldap\.user_search\.scope: "all" is not one of sub, one$`,
		`^  line 11: providers\[0\]\.ldap\.user_search\.filter: "uid=x" must be one filter in parentheses`,
		`^  line 13: providers\[0\]\.ldap\.attributes\.subject: "uid" is a username or the DN`,
		`^  line 15: providers\[0\]\.ldap\.groups\.base_dn: is required$`,
		`^  line 16: providers\[0\]\.ldap\.groups\.nested: "deep" is not one of none, walk, in_chain$`,
	)
	if strings.Contains(out.String()+errb.String(), "not-printed-bind-password") {
		t.Error("the bind password was printed")
	}
}

// wantLines fails unless each pattern matches a line of out, in order.
func wantLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	i := 0
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("no line matching %q (in order) in:\n%s", p, out)
		}
		i++
	}
}
