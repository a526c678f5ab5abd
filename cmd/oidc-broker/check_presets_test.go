package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckPrintsPresetDefaults: check shows what each preset means (its
// settings, marked where the configuration overrides them), as text and
// JSON, and reports every preset problem at once, by field.
func TestCheckPrintsPresetDefaults(t *testing.T) {
	t.Setenv("GH_SECRET", "gh-s3cret-value")
	path := writeConfig(t, `providers:
  - id: gh
    type: github
    client_id: Iv1.0123456789abcdef
    client_secret: ${GH_SECRET}
    orgs: [acme]
  - id: ms
    type: entra
    tenant: organizations
    tenants: [11111111-1111-1111-1111-111111111111]
    client_id: c
    client_secret: s
    scopes: [openid, email]
`)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	wantLines(t, out.String(),
		`^gh \(github: the oauth2 provider with these settings`,
		`^  authorization_endpoint\s+https://github.com/login/oauth/authorize$`,
		`^  userinfo_endpoint\s+https://api.github.com/user$`,
		`^  scopes\s+read:user user:email read:org$`,
		`^  claims.subject\s+id$`,
		`^  email\s+the primary address from https://api.github.com/user/emails, verified only when GitHub says so$`,
		`^  admission\s+members of acme only; .*\(configured\)$`,
		`^ms \(entra: the oidc provider`,
		`^  issuer\s+https://login.microsoftonline.com/\{tenantid\}/v2.0$`,
		`^  discovery\s+https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration$`,
		`^  scopes\s+openid email  \(configured\)$`,
		`^  claims.extra_groups\s+roles \(as "role:…"\)$`,
		`^  admission\s+users of the tenants 11111111-1111-1111-1111-111111111111 only`,
	)
	if strings.Contains(out.String(), "gh-s3cret-value") {
		t.Error("the secret was printed")
	}

	out.Reset()
	if code := run([]string{"check", "--config", path, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("json: exit %d", code)
	}
	var res checkResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Presets) != 2 || res.Presets[1].Base != "oidc" ||
		res.Presets[0].Settings[0].Key != "authorization_endpoint" {
		t.Errorf("JSON %v: %s", err, out.String())
	}

	bad := writeConfig(t, `providers:
  - id: ok
    type: gitlab
    client_id: c
    client_secret: s
  - id: ms
    type: entra
    tenant: common
    client_id: c
    client_secret: s
  - id: gh
    type: githubb
    client_id: c
    client_secret: s
  - id: g
    type: google
    hosted_domains: ["@example.com"]
    orgs: [acme]
    client_id: c
    client_secret: s
`)
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != 1 {
		t.Fatalf("bad: exit %d", code)
	}
	for _, want := range []string{"line 6: providers[1].tenants: is required with tenant common",
		`line 12: providers[2].type: "githubb" is not one of oidc, oauth2, local, ldap, entra, github, gitlab, google, keycloak, okta`,
		`providers[3].hosted_domains[0]: "@example.com" is not a domain`, "providers[3].orgs: is only used by providers of type github"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("errors lack %q:\n%s", want, errb.String())
		}
	}
}
