//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
)

// TestPresetsThroughTheBinary: the real binary, configured in YAML with the
// github (Enterprise Server, orgs), entra (multi-tenant, Graph) and google
// (hosted_domains) presets, signs users in at in-process fakes of those
// IdPs, resolves an Entra ID groups overage through the fake Graph, and
// answers 403 to the users the presets do not admit.
func TestPresetsThroughTheBinary(t *testing.T) {
	const tenant, otherTenant = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	origin := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	client := func(id string) fakeidp.Client {
		return fakeidp.Client{ID: "broker-" + id, Secret: "secret-" + id, RedirectURI: origin + "/oauth2/callback/" + id}
	}

	ghes := fakeidp.NewGitHub(client("ghes"), true)
	defer ghes.Close()
	ghes.MaxPerPage(1)
	ghes.AddUser(fakeidp.GitHubUser{ID: 583231, Login: "octocat", Orgs: []string{"acme", "other"},
		Teams:  []fakeidp.GitHubTeam{{Org: "acme", Slug: "platform"}},
		Emails: []fakeidp.GitHubEmail{{Email: "octocat@github.example", Primary: true, Verified: true}}})
	ghes.AddUser(fakeidp.GitHubUser{ID: 7, Login: "outsider", Orgs: []string{"other"}})

	entra := fakeidp.NewEntra(client("entra"))
	defer entra.Close()
	graph := fakeidp.NewGraph(entra)
	defer graph.Close()
	overage := fakeidp.EntraOverage(tenant, "oid-olga")
	overage["sub"], overage["tid"], overage["email"], overage["xms_edov"] = "pw-olga", tenant, "olga@contoso.example", true
	entra.AddUser(fakeidp.User{Login: "olga", Claims: overage, Groups: []fakeidp.Group{{ID: "g-1"}, {ID: "g-2"}}})
	entra.AddUser(fakeidp.User{Login: "mallory", Claims: map[string]any{"sub": "pw-mallory", "tid": otherTenant}})

	google := fakeidp.NewGoogle(client("google"))
	defer google.Close()
	google.AddUser(fakeidp.User{Login: "gmail", Claims: map[string]any{"sub": "1002", "email": "a@gmail.example", "email_verified": true}})

	dir := t.TempDir()
	config := filepath.Join(dir, "broker.yaml")
	yaml := fmt.Sprintf(`listen: %s
public_url: %s
providers:
  - id: ghes
    type: github
    base_url: %s
    client_id: broker-ghes
    client_secret: ${GHES_SECRET}
    orgs: [acme]
  - id: entra
    type: entra
    tenant: organizations
    tenants: [%s]
    base_url: %s
    graph_url: %s
    client_id: broker-entra
    client_secret: secret-entra
  - id: google
    type: google
    issuer: %s
    hosted_domains: [example.com]
    client_id: broker-google
    client_secret: secret-google
`, strings.TrimPrefix(origin, "http://"), origin, ghes.URL, tenant, entra.URL, graph.URL, google.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GHES_SECRET", "secret-ghes")
	b, _ := startServe(t, config)

	login := func(provider, user string) (*http.Client, *http.Response) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar} // follows the redirects: start, the IdP, the callback
		resp, err := c.Get(b.URL + "/oauth2/start/" + provider + "?rd=%2Foauth2%2Fuserinfo&login_hint=" + url.QueryEscape(user))
		if err != nil {
			t.Fatal(err)
		}
		return c, resp
	}
	userinfo := func(provider, user string) map[string]any {
		t.Helper()
		_, resp := login(provider, user)
		defer resp.Body.Close()
		var info map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&info) != nil {
			t.Fatalf("%s %s: status %d", provider, user, resp.StatusCode)
		}
		return info
	}

	if info := userinfo("ghes", "octocat"); info["user"] != "ghes:583231" || info["email_verified"] != true ||
		fmt.Sprint(info["groups"]) != "[acme acme/platform]" {
		t.Errorf("GitHub Enterprise Server: %v", info)
	}
	if info := userinfo("entra", "olga"); info["user"] != "entra:pw-olga" || fmt.Sprint(info["groups"]) != "[g-1 g-2]" ||
		info["groups_incomplete"] != nil || info["email_verified"] != true {
		t.Errorf("Entra ID with a groups overage: %v", info)
	}
	for _, refused := range []struct{ provider, user, reason string }{
		{"ghes", "outsider", "a member of none of orgs"},
		{"entra", "mallory", "tenant " + otherTenant + " is not in tenants"},
		{"google", "gmail", "no hd claim"},
	} {
		c, resp := login(refused.provider, refused.user)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "may not sign in here") {
			t.Errorf("%s %s: status %d", refused.provider, refused.user, resp.StatusCode)
		}
		if r, err := c.Get(b.URL + "/oauth2/userinfo"); err != nil || r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s: a session exists after the refusal", refused.provider, refused.user)
		} else {
			r.Body.Close()
		}
		if !strings.Contains(b.stderr.String(), refused.reason) {
			t.Errorf("the log lacks %q", refused.reason)
		}
	}
	if calls := graph.Calls(); len(calls) != 1 {
		t.Errorf("Graph calls: %v", calls)
	}
}
