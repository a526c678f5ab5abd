package providers

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func claims(t *testing.T, js string) map[string]any {
	t.Helper()
	if js == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMapping uses the claim shapes real IdPs send.
func TestMapping(t *testing.T) {
	cases := []struct {
		name              string
		cfg               ClaimsConfig
		idToken, userinfo string
		want              Identity
	}{
		{
			name: "Keycloak realm roles as groups, with a prefix and static groups",
			cfg:  ClaimsConfig{Groups: "realm_access.roles", GroupPrefix: "kc:", StaticGroups: []string{"staff"}},
			idToken: `{"sub":"f:3b6c:alice","email":"alice@corp.example","email_verified":true,"preferred_username":"alice",
				"name":"Alice A","realm_access":{"roles":["offline_access","admin"]},"resource_access":{"web.app":{"roles":["editor"]}}}`,
			want: Identity{Provider: "p", Subject: "f:3b6c:alice", Email: "alice@corp.example", EmailVerified: true,
				Name: "Alice A", PreferredUsername: "alice", Groups: []string{"kc:offline_access", "kc:admin", "staff"}},
		},
		{
			name:    "Keycloak client roles under a client id containing a dot",
			cfg:     ClaimsConfig{Groups: "resource_access.web.app.roles"},
			idToken: `{"sub":"1","resource_access":{"web.app":{"roles":["editor","viewer"]}}}`,
			want:    Identity{Provider: "p", Subject: "1", Groups: []string{"editor", "viewer"}},
		},
		{
			name: "Entra ID: no email_verified, groups as object ids, username in upn",
			cfg:  ClaimsConfig{Username: "upn"},
			idToken: `{"sub":"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ","oid":"00000000-0000-0000-66f3-3332eca7ea81",
				"email":"bob@contoso.example","upn":"bob@contoso.example","name":"Bob",
				"groups":["6c0d5b6e-1111-4a3e-9d3f-222222222222"]}`,
			want: Identity{Provider: "p", Subject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", Email: "bob@contoso.example",
				Name: "Bob", PreferredUsername: "bob@contoso.example", Groups: []string{"6c0d5b6e-1111-4a3e-9d3f-222222222222"}},
		},
		{
			name: "Entra ID groups overage is flagged, not relayed as an empty list",
			idToken: `{"sub":"x","_claim_names":{"groups":"src1"},
				"_claim_sources":{"src1":{"endpoint":"https://graph.windows.net/t/users/x/getMemberObjects"}}}`,
			want: Identity{Provider: "p", Subject: "x", GroupsIncomplete: true},
		},
		{
			name:    "Okta: groups claim from userinfo, which wins over the ID token",
			idToken: `{"sub":"00u1","email":"carol@okta.example","email_verified":true,"groups":["Everyone"]}`,
			userinfo: `{"sub":"00u1","email":"carol@okta.example","email_verified":true,"preferred_username":"carol@okta.example",
				"groups":["Everyone","Engineering"]}`,
			want: Identity{Provider: "p", Subject: "00u1", Email: "carol@okta.example", EmailVerified: true,
				PreferredUsername: "carol@okta.example", Groups: []string{"Everyone", "Engineering"}},
		},
		{
			name:    "Google: email_verified as a string in old tokens, hd ignored, no groups",
			idToken: `{"sub":"110169484474386276334","email":"dan@gmail.com","email_verified":"true","name":"Dan","hd":"example.com"}`,
			want:    Identity{Provider: "p", Subject: "110169484474386276334", Email: "dan@gmail.com", EmailVerified: true, Name: "Dan"},
		},
		{
			name:     "email and its flag come from one source",
			idToken:  `{"sub":"1","email":"old@x.example","email_verified":true}`,
			userinfo: `{"sub":"1","email":"new@x.example"}`,
			want:     Identity{Provider: "p", Subject: "1", Email: "new@x.example"},
		},
		{
			name:    "email_verified of another type is false",
			idToken: `{"sub":"1","email":"a@x.example","email_verified":1}`,
			want:    Identity{Provider: "p", Subject: "1", Email: "a@x.example"},
		},
		{
			name:    "InsecureAssumeEmailVerified",
			cfg:     ClaimsConfig{InsecureAssumeEmailVerified: true},
			idToken: `{"sub":"1","email":"a@x.example"}`,
			want:    Identity{Provider: "p", Subject: "1", Email: "a@x.example", EmailVerified: true},
		},
		{
			name:     "source id_token ignores userinfo",
			cfg:      ClaimsConfig{Source: SourceIDToken},
			idToken:  `{"sub":"1","name":"From token"}`,
			userinfo: `{"sub":"1","name":"From userinfo","groups":["g"]}`,
			want:     Identity{Provider: "p", Subject: "1", Name: "From token"},
		},
		{
			name:    "groups as a space- and comma-separated string",
			idToken: `{"sub":"1","groups":"a b,c"}`,
			want:    Identity{Provider: "p", Subject: "1", Groups: []string{"a", "b", "c"}},
		},
		{
			name:    "namespaced claim names with dots and slashes (Auth0)",
			cfg:     ClaimsConfig{Groups: "https://example.com/roles"},
			idToken: `{"sub":"auth0|1","https://example.com/roles":["admin"]}`,
			want:    Identity{Provider: "p", Subject: "auth0|1", Groups: []string{"admin"}},
		},
		{
			name: "GitHub-like OAuth2 userinfo: numeric id as the subject, login as the username",
			cfg:  ClaimsConfig{Subject: "id", Username: "login", Source: SourceUserinfo},
			userinfo: `{"login":"octocat","id":583231,"name":"The Octocat","email":"octocat@github.example",
				"organizations":null}`,
			want: Identity{Provider: "p", Subject: "583231", Email: "octocat@github.example", Name: "The Octocat",
				PreferredUsername: "octocat"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mapper{provider: "p", cfg: c.cfg, log: quiet}
			got := m.identity(claims(t, c.idToken), claims(t, c.userinfo))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestClaimPath(t *testing.T) {
	c := map[string]any{"a": map[string]any{"b.c": map[string]any{"d": "x"}, "b": map[string]any{"c": "shadowed?"}}, "a.b": "top"}
	// At each level the longest whole key wins: a → "b.c" → d, not a → b → c.
	cases := map[string]any{"a.b": "top", "a.b.c.d": "x", "a.b.c.e": nil, "a.z": nil, "": nil}
	for path, want := range cases {
		got, _ := claimPath(c, path)
		if got != want {
			t.Errorf("claimPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestClaimsConfigValidate(t *testing.T) {
	errs := strings.Join(ClaimsConfig{Source: "token", Subject: "email", StaticGroups: []string{" "}}.validate(false), "\n")
	for _, want := range []string{`claims.source: "token"`, `claims.subject: "email"`, "claims.static_groups[0]: is empty"} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if errs := (ClaimsConfig{Subject: "id", Source: SourceUserinfo}).validate(true); len(errs) != 0 {
		t.Errorf("OAuth2 subject: %v", errs)
	}
}
