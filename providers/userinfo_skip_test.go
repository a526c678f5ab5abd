package providers

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUserinfoOnlyWhenNeeded: with userinfo "auto" a login calls userinfo
// only when the ID token lacks a claim the mapping reads; "always" calls
// it anyway, "never" never, and claims.source decides before the token.
func TestUserinfoOnlyWhenNeeded(t *testing.T) {
	full := map[string]any{"email": "a@example.com", "email_verified": true, "name": "Token Name",
		"preferred_username": "alice", "groups": []string{"g1"}, "realm_access": map[string]any{"roles": []string{"r1"}}}
	without := func(name string) map[string]any {
		c := maps.Clone(full)
		delete(c, name)
		return c
	}
	for _, tc := range []struct {
		name     string
		claims   map[string]any // in the ID token, besides iss, sub and the like
		edit     func(*Config)
		userinfo bool   // called
		wantName string // the relayed name: userinfo's "Userinfo Name" wins where it is read
	}{
		{name: "the ID token carries everything", claims: full, wantName: "Token Name"},
		{name: "always", claims: full, edit: func(c *Config) { c.Userinfo = "always" }, userinfo: true, wantName: "Userinfo Name"},
		{name: "no email_verified", claims: without("email_verified"), userinfo: true, wantName: "Userinfo Name"},
		{name: "no email_verified, assumed verified", claims: without("email_verified"),
			edit: func(c *Config) { c.Claims.InsecureAssumeEmailVerified = true }, wantName: "Token Name"},
		{name: "no preferred_username", claims: without("preferred_username"), userinfo: true, wantName: "Userinfo Name"},
		{name: "no groups", claims: without("groups"), userinfo: true, wantName: "Userinfo Name"},
		{name: "groups null", claims: func() map[string]any { c := without("groups"); c["groups"] = nil; return c }(),
			userinfo: true, wantName: "Userinfo Name"},
		{name: "no name", claims: without("name"), userinfo: true, wantName: "Userinfo Name"},
		{name: "an extra group claim present", claims: full,
			edit: func(c *Config) { c.Claims.ExtraGroups = []GroupClaim{{Claim: "realm_access.roles"}} }, wantName: "Token Name"},
		{name: "an extra group claim missing", claims: full,
			edit: func(c *Config) { c.Claims.ExtraGroups = []GroupClaim{{Claim: "roles"}} }, userinfo: true, wantName: "Userinfo Name"},
		{name: "another username claim", claims: full,
			edit: func(c *Config) { c.Claims.Username = "nickname" }, userinfo: true, wantName: "Userinfo Name"},
		{name: "source userinfo", claims: full,
			edit: func(c *Config) { c.Claims.Source = SourceUserinfo }, userinfo: true, wantName: "Userinfo Name"},
		{name: "source id_token", claims: without("groups"),
			edit: func(c *Config) { c.Claims.Source = SourceIDToken }, wantName: "Token Name"},
		{name: "never", claims: without("groups"), edit: func(c *Config) { c.Userinfo = "never" }, wantName: "Token Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeOP(t)
			now := time.Now()
			idc := f.idClaims(now, "n-1")
			delete(idc, "groups") // idClaims' own
			maps.Copy(idc, tc.claims)
			idToken := f.signed(t, idc, "")
			f.set(func(o *fakeOP) {
				o.userinfo = map[string]any{"sub": "user-1", "name": "Userinfo Name", "nickname": "al"}
				o.token = func(url.Values) (int, any) {
					return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": idToken}
				}
			})
			cfg := Config{ID: "op", Issuer: f.srv.URL, ClientID: "client-1", ClientSecret: "secret-1"}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			var log callLog
			p, err := testTypes.Open(cfg, Options{Logger: quiet, Observe: log.observe})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Exchange(context.Background(), Callback{Params: url.Values{"code": {"c-1"}}, Nonce: "n-1", Verifier: "v", RedirectURI: "https://b/cb"})
			if err != nil {
				t.Fatal(err)
			}
			called := slices.ContainsFunc(log.seen(), func(s string) bool { return strings.Contains(s, " userinfo ") })
			if called != tc.userinfo {
				t.Errorf("userinfo called: %v, want %v (calls %q)", called, tc.userinfo, log.seen())
			}
			if res.Identity.Name != tc.wantName {
				t.Errorf("name %q, want %q", res.Identity.Name, tc.wantName)
			}
		})
	}
}

// TestRefreshReadsUserinfoWithoutNewIDToken: a refresh that brings no new
// ID token calls userinfo although the old token carried every claim: its
// claims may have changed since, and userinfo is where to read them.
func TestRefreshReadsUserinfoWithoutNewIDToken(t *testing.T) {
	f := newFakeOP(t)
	now := time.Now()
	idc := f.idClaims(now, "n-1", "old-group")
	maps.Copy(idc, map[string]any{"email": "a@example.com", "email_verified": true, "name": "A", "preferred_username": "a"})
	old := f.signed(t, idc, "")
	f.set(func(o *fakeOP) {
		o.userinfo = map[string]any{"sub": "user-1", "groups": []string{"new-group"}}
		o.token = func(url.Values) (int, any) {
			return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60}
		}
	})
	p := f.provider(t, time.Now).(Refresher)
	res, err := p.Refresh(context.Background(), RefreshRequest{RefreshToken: "rt", Subject: "user-1", IDToken: old})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Identity.Groups, []string{"new-group"}) {
		t.Errorf("groups %q, want userinfo's [new-group]", res.Identity.Groups)
	}
}
