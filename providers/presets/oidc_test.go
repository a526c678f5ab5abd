package presets

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

func TestGooglePreset(t *testing.T) {
	op := fakeidp.NewGoogle(fakeClient("google"))
	t.Cleanup(op.Close)
	for _, u := range []fakeidp.User{
		{Login: "ann", Claims: map[string]any{"sub": "1001", "email": "ann@example.com", "email_verified": true, "name": "Ann", "hd": "example.com"}},
		{Login: "sub", Claims: map[string]any{"sub": "1002", "email": "sub@eng.example.com", "email_verified": true, "hd": "eng.example.com"}},
		{Login: "gmail", Claims: map[string]any{"sub": "1003", "email": "ann.example.com@gmail.example", "email_verified": true}},
		{Login: "other", Claims: map[string]any{"sub": "1004", "email": "eve@example.com.evil.example", "email_verified": true, "hd": "evil.example"}},
	} {
		op.AddUser(u)
	}
	open := func(domains ...string) providers.Provider {
		cfg := presetConfig("google", providers.TypeGoogle)
		cfg.Issuer, cfg.HostedDomains = op.URL, domains
		return openPresetForTest(t, cfg, providers.Options{})
	}
	t.Run("login, refresh token", func(t *testing.T) {
		res, q, err := loginAt(t, open("example.com"), "ann")
		if err != nil {
			t.Fatal(err)
		}
		if id := res.Identity; id.Subject != "1001" || id.Email != "ann@example.com" || !id.EmailVerified || id.Name != "Ann" {
			t.Errorf("identity %+v", id)
		}
		if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("hd") != "example.com" {
			t.Errorf("authorization request %v", q)
		}
		if res.RefreshToken == "" {
			t.Error("Google issued no refresh token: access_type=offline not asked for")
		}
	})
	cases := []struct {
		name, user string
		domains    []string
		allowed    bool
	}{
		{"any account without hosted_domains", "gmail", nil, true},
		{"listed domain", "sub", []string{"example.com", "ENG.example.com"}, true},
		{"a subdomain is another domain", "sub", []string{"example.com"}, false},
		{"consumer account: no hd", "gmail", []string{"example.com"}, false},
		{"other Workspace domain", "other", []string{"example.com"}, false},
		{"* admits any Workspace account", "other", []string{"*"}, true},
		{"* refuses consumer accounts", "gmail", []string{"*"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := loginAt(t, open(c.domains...), c.user)
			var na *providers.NotAllowedError
			switch {
			case c.allowed && err != nil:
				t.Errorf("refused: %v", err)
			case !c.allowed && !errors.As(err, &na):
				t.Errorf("err = %v, want not allowed", err)
			}
		})
	}
}

func TestGoogleIssuerSpellings(t *testing.T) {
	iss := googleISS(googleIssuer)
	for s, ok := range map[string]bool{"https://accounts.google.com": true, "accounts.google.com": true,
		"http://accounts.google.com": false, "https://accounts.google.com/": false, "accounts.google.com.evil.example": false} {
		if (iss(s) == nil) != ok {
			t.Errorf("iss %q accepted %v, want %v", s, !ok, ok)
		}
	}
}

func TestGitLabPreset(t *testing.T) {
	op := fakeidp.NewGitLab(fakeClient("gitlab"))
	t.Cleanup(op.Close)
	op.AddUser(fakeidp.User{Login: "gl",
		Claims: map[string]any{"sub": "4242", "sub_legacy": "a1b2", "email": "gl@example.com", "email_verified": true,
			"nickname": "glen", "groups_direct": []string{"acme/platform"}},
		Userinfo: map[string]any{"name": "Glen", "nickname": "glen", "preferred_username": "glen", "email": "gl@example.com",
			"email_verified": true, "groups": []string{"acme", "acme/platform"}}})
	cfg := presetConfig("gitlab", providers.TypeGitLab)
	cfg.BaseURL = op.URL // a self-managed GitLab
	res, q, err := loginAt(t, openPresetForTest(t, cfg, providers.Options{}), "gl")
	if err != nil {
		t.Fatal(err)
	}
	id := res.Identity
	if id.Subject != "4242" || id.PreferredUsername != "glen" || id.Name != "Glen" || !id.EmailVerified ||
		!slices.Equal(id.Groups, []string{"acme", "acme/platform"}) {
		t.Errorf("identity %+v", id)
	}
	if q.Get("scope") != "openid profile email" {
		t.Errorf("scope %q", q.Get("scope"))
	}
}

func TestKeycloakPreset(t *testing.T) {
	op := fakeidp.NewKeycloak(fakeClient("kc"), "main")
	t.Cleanup(op.Close)
	op.AddUser(fakeidp.User{Login: "kate", Claims: map[string]any{"sub": "f:1:kate", "preferred_username": "kate",
		"email": "kate@example.com", "email_verified": true, "groups": []string{"/staff"},
		"realm_access":    map[string]any{"roles": []string{"offline_access", "admin"}},
		"resource_access": map[string]any{"broker-kc": map[string]any{"roles": []string{"editor"}}, "other": map[string]any{"roles": []string{"x"}}}}})
	cfg := presetConfig("kc", providers.TypeKeycloak)
	cfg.Issuer = op.URL + "/realms/main"
	res, _, err := loginAt(t, openPresetForTest(t, cfg, providers.Options{}), "kate")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/staff", "role:offline_access", "role:admin", "role:broker-kc:editor"}
	if id := res.Identity; !slices.Equal(id.Groups, want) || id.PreferredUsername != "kate" || !id.EmailVerified {
		t.Errorf("identity %+v, want groups %v", id, want)
	}
	if _, ok := openPresetForTest(t, cfg, providers.Options{}).(providers.LogoutTokenVerifier); !ok {
		t.Error("the keycloak preset lost back-channel logout")
	}
}

func TestOktaPreset(t *testing.T) {
	for _, server := range []string{"", "default"} {
		t.Run("authorization server "+cmp.Or(server, "org"), func(t *testing.T) {
			op := fakeidp.NewOkta(fakeClient("okta"), server)
			t.Cleanup(op.Close)
			op.AddUser(fakeidp.User{Login: "otto", Claims: map[string]any{"sub": "00u1", "preferred_username": "otto@example.com",
				"email": "otto@example.com", "email_verified": true, "groups": []string{"Everyone", "Engineering"}}})
			cfg := presetConfig("okta", providers.TypeOkta)
			cfg.Issuer = op.Issuer("")
			res, q, err := loginAt(t, openPresetForTest(t, cfg, providers.Options{}), "otto")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Identity.Groups, []string{"Everyone", "Engineering"}) {
				t.Errorf("groups %v", res.Identity.Groups)
			}
			wantScope := map[string]string{"": "openid profile email groups", "default": "openid profile email"}[server]
			if q.Get("scope") != wantScope {
				t.Errorf("scope %q, want %q", q.Get("scope"), wantScope)
			}
			if !strings.HasSuffix(cfg.Issuer, "/oauth2/default") == (server == "default") {
				t.Errorf("issuer %q", cfg.Issuer)
			}
		})
	}
}
