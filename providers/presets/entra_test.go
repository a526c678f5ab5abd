package presets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/fakeidp"
	"github.com/oidc-broker/oidc-broker/providers"
)

// entraUser is a user of tenant tid as Entra ID describes them in a v2.0
// ID token: a pairwise sub, the object id, the tenant, the UPN, an email
// (a mutable attribute), app roles; more adds or replaces claims.
func entraUser(login, tid string, more map[string]any) fakeidp.User {
	claims := map[string]any{"sub": "pairwise-" + login, "oid": "oid-" + login, "tid": tid, "ver": "2.0",
		"preferred_username": login + "@contoso.example", "name": strings.ToUpper(login[:1]) + login[1:],
		"email": login + "@contoso.example", "roles": []string{"Reader"}}
	maps.Copy(claims, more)
	return fakeidp.User{Login: login, Claims: claims}
}

type entraFake struct {
	op    *fakeidp.OP
	graph *fakeidp.Graph
}

func newEntra(t *testing.T, users ...fakeidp.User) entraFake {
	t.Helper()
	op := fakeidp.NewEntra(fakeClient("entra"))
	t.Cleanup(op.Close)
	g := fakeidp.NewGraph(op)
	t.Cleanup(g.Close)
	for _, u := range users {
		op.AddUser(u)
	}
	return entraFake{op: op, graph: g}
}

func (f entraFake) provider(t *testing.T, tenant string, tenants []string, edit func(*providers.Config)) providers.Provider {
	t.Helper()
	cfg := presetConfig("entra", providers.TypeEntra)
	cfg.Tenant, cfg.Tenants, cfg.BaseURL, cfg.GraphURL = tenant, tenants, f.op.URL, f.graph.URL
	if edit != nil {
		edit(&cfg)
	}
	return openPresetForTest(t, cfg, providers.Options{})
}

func TestEntraSingleTenant(t *testing.T) {
	f := newEntra(t,
		entraUser("alice", tenantA, map[string]any{"xms_edov": true, "groups": []string{"g-1", "g-2"}}),
		entraUser("bob", tenantA, nil),
		entraUser("carol", tenantA, map[string]any{"verified_primary_email": []string{"carol@contoso.example"}}),
		entraUser("mallory", tenantB, map[string]any{"xms_edov": true}))
	p := f.provider(t, tenantA, nil, nil)

	res, q, err := loginAt(t, p, "alice")
	if err != nil {
		t.Fatal(err)
	}
	id := res.Identity
	if id.Subject != "pairwise-alice" || id.PreferredUsername != "alice@contoso.example" || !id.EmailVerified ||
		!slices.Equal(id.Groups, []string{"g-1", "g-2", "role:Reader"}) || id.GroupsIncomplete {
		t.Errorf("identity %+v", id)
	}
	if q.Get("scope") != "openid profile email offline_access User.Read" {
		t.Errorf("scope %q", q.Get("scope"))
	}
	if res.RefreshToken == "" {
		t.Error("no refresh token despite offline_access")
	}

	res, _, err = loginAt(t, p, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Email != "bob@contoso.example" || res.Identity.EmailVerified {
		t.Errorf("bob's email %q counted as verified without xms_edov", res.Identity.Email)
	}
	res, _, err = loginAt(t, p, "carol")
	if err != nil || !res.Identity.EmailVerified {
		t.Errorf("carol (verified_primary_email): %v %+v", err, res)
	}
	// A token of another tenant does not pass the single tenant's issuer.
	if _, _, err := loginAt(t, p, "mallory"); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("a token from tenant B accepted by tenant A's provider: %v", err)
	}
}

func TestEntraMultiTenant(t *testing.T) {
	f := newEntra(t, entraUser("alice", tenantA, nil), entraUser("bea", tenantB, map[string]any{"xms_edov": true}),
		entraUser("mallory", tenantC, nil))
	for _, tenant := range []string{"organizations", "common"} {
		t.Run(tenant, func(t *testing.T) {
			p := f.provider(t, tenant, []string{tenantA, strings.ToUpper(tenantB)}, nil)
			for _, user := range []string{"alice", "bea"} {
				res, _, err := loginAt(t, p, user)
				if err != nil {
					t.Fatalf("%s: %v", user, err)
				}
				if res.Identity.Subject != "pairwise-"+user {
					t.Errorf("%s: identity %+v", user, res.Identity)
				}
			}
			_, _, err := loginAt(t, p, "mallory")
			var na *providers.NotAllowedError
			if !errors.As(err, &na) || !strings.Contains(na.Reason, "tenant "+tenantC+" is not in tenants") {
				t.Errorf("tenant C: err = %v, want not allowed", err)
			}
			// Refresh checks each token's issuer the same way.
			res, _, _ := loginAt(t, p, "bea")
			ref, err := p.(providers.Refresher).Refresh(context.Background(), providers.RefreshRequest{RefreshToken: res.RefreshToken,
				Subject: res.Identity.Subject, IDToken: res.IDToken})
			if err != nil || !ref.Identity.EmailVerified {
				t.Errorf("refresh: %v %+v", err, ref)
			}
			// Once tenant B is no longer listed (a reload), its sessions
			// cannot be renewed.
			fewer := f.provider(t, tenant, []string{tenantA}, nil)
			_, err = fewer.(providers.Refresher).Refresh(context.Background(), providers.RefreshRequest{RefreshToken: res.RefreshToken,
				Subject: res.Identity.Subject, IDToken: res.IDToken})
			if !errors.Is(err, providers.ErrRefreshRefused) || !errors.As(err, &na) {
				t.Errorf("refresh after tenant B was removed: %v", err)
			}
		})
	}
}

// TestEntraIssuerOfItsTenant: a multi-tenant token must be issued by its
// own tenant's issuer; the iss hook accepts only the issuer shape.
func TestEntraIssuerOfItsTenant(t *testing.T) {
	e := newEntraHooks(providers.Config{ID: "e", Tenant: "organizations", Tenants: []string{tenantA}}, providers.Options{Logger: quiet})
	for iss, ok := range map[string]bool{
		"https://login.microsoftonline.com/" + tenantA + "/v2.0":      true,
		"https://login.microsoftonline.com/" + tenantC + "/v2.0":      true, // shape only: the tenant is complete's decision
		"https://login.microsoftonline.com/{tenantid}/v2.0":           false,
		"https://login.microsoftonline.com/organizations/v2.0":        false,
		"https://sts.windows.net/" + tenantA + "/":                    false, // v1.0
		"https://evil.example/" + tenantA + "/v2.0":                   false,
		"https://login.microsoftonline.com/" + tenantA + "/v2.0/more": false,
	} {
		if got := e.tenantIssuer(iss) == nil; got != ok {
			t.Errorf("iss %q accepted %v, want %v", iss, got, ok)
		}
	}
	id := providers.Identity{}
	err := e.complete(context.Background(), providers.Login{IDToken: map[string]any{
		"iss": "https://login.microsoftonline.com/" + tenantA + "/v2.0", "tid": tenantC}}, &id)
	var na *providers.NotAllowedError
	if err == nil || errors.As(err, &na) || !strings.Contains(err.Error(), "not the issuer of its tenant") {
		t.Errorf("iss of tenant A with tid C: %v", err)
	}
}

func TestEntraConsumers(t *testing.T) {
	f := newEntra(t, entraUser("max", fakeidp.EntraConsumers, map[string]any{"xms_edov": true}), entraUser("work", tenantA, nil))
	p := f.provider(t, "consumers", nil, nil)
	res, _, err := loginAt(t, p, "max")
	if err != nil || !res.Identity.EmailVerified {
		t.Fatalf("personal account: %v %+v", err, res)
	}
	if _, _, err := loginAt(t, p, "work"); err == nil {
		t.Error("a work account signed in at the consumers provider")
	}
}

func TestEntraGroupOverage(t *testing.T) {
	var groups []fakeidp.Group
	for i := range 230 {
		groups = append(groups, fakeidp.Group{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Name: fmt.Sprintf("Team %03d", i)})
	}
	over := entraUser("olga", tenantA, fakeidp.EntraOverage(tenantA, "oid-olga"))
	over.Groups = groups
	f := newEntra(t, over)

	t.Run("ids", func(t *testing.T) {
		res, _, err := loginAt(t, f.provider(t, tenantA, nil, func(c *providers.Config) { c.Claims.GroupPrefix = "entra:" }), "olga")
		if err != nil {
			t.Fatal(err)
		}
		id := res.Identity
		if id.GroupsIncomplete || len(id.Groups) != 231 || id.Groups[0] != "entra:"+groups[0].ID || id.Groups[230] != "entra:role:Reader" {
			t.Errorf("incomplete %v, %d groups: %v…", id.GroupsIncomplete, len(id.Groups), id.Groups[:min(3, len(id.Groups))])
		}
		if calls := f.graph.Calls(); len(calls) != 1 || calls[0] != "POST /v1.0/me/getMemberObjects" {
			t.Errorf("Graph calls %v", calls)
		}
	})
	t.Run("names, three pages", func(t *testing.T) {
		res, _, err := loginAt(t, f.provider(t, tenantA, nil, func(c *providers.Config) { c.GroupOverage = "names" }), "olga")
		if err != nil {
			t.Fatal(err)
		}
		id := res.Identity
		if id.GroupsIncomplete || len(id.Groups) != 231 || id.Groups[229] != "Team 229" {
			t.Errorf("incomplete %v, %d groups", id.GroupsIncomplete, len(id.Groups))
		}
	})
	t.Run("off", func(t *testing.T) {
		res, _, err := loginAt(t, f.provider(t, tenantA, nil, func(c *providers.Config) { c.GroupOverage = "off" }), "olga")
		if err != nil || !res.Identity.GroupsIncomplete || !slices.Equal(res.Identity.Groups, []string{"role:Reader"}) {
			t.Errorf("%v %+v", err, res)
		}
	})
	failures := []struct {
		name  string
		setup func()
		mode  string
	}{
		{"Graph unavailable", func() { f.graph.Fail(http.StatusServiceUnavailable) }, "ids"},
		{"names without GroupMember.Read.All", func() { f.graph.Fail(0); f.graph.ForbidNames() }, "names"},
	}
	for _, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			res, _, err := loginAt(t, f.provider(t, tenantA, nil, func(cfg *providers.Config) { cfg.GroupOverage = c.mode }), "olga")
			if err != nil {
				t.Fatalf("the login failed with Graph: %v", err)
			}
			if !res.Identity.GroupsIncomplete || !slices.Equal(res.Identity.Groups, []string{"role:Reader"}) {
				t.Errorf("identity %+v: want the app roles, marked incomplete", res.Identity)
			}
		})
	}
}

// TestEntraGraphNextLinkStaysInGraph: an @odata.nextLink to another host
// is not followed with the user's token.
func TestEntraGraphNextLinkStaysInGraph(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":[{"displayName":"injected"}]}`))
	}))
	defer elsewhere.Close()
	over := entraUser("olga", tenantA, fakeidp.EntraOverage(tenantA, "oid-olga"))
	for i := range 150 {
		over.Groups = append(over.Groups, fakeidp.Group{ID: fmt.Sprint(i), Name: fmt.Sprint("g", i)})
	}
	f := newEntra(t, over)
	f.graph.NextLinksTo(elsewhere.URL)
	res, _, err := loginAt(t, f.provider(t, tenantA, nil, func(c *providers.Config) { c.GroupOverage = "names" }), "olga")
	if err != nil {
		t.Fatal(err)
	}
	if leaked.Load() != 0 || slices.Contains(res.Identity.Groups, "injected") || !res.Identity.GroupsIncomplete || len(res.Identity.Groups) != 101 {
		t.Errorf("leaked %d, %d groups, incomplete %v", leaked.Load(), len(res.Identity.Groups), res.Identity.GroupsIncomplete)
	}
}

func TestEntraEmailVerified(t *testing.T) {
	cases := []struct {
		name   string
		claims string
		email  string
		want   bool
	}{
		{"xms_edov true", `{"email":"a@x.example","xms_edov":true}`, "a@x.example", true},
		{"xms_edov as a string", `{"email":"a@x.example","xms_edov":"true"}`, "a@x.example", true},
		{"xms_edov false", `{"email":"a@x.example","xms_edov":false}`, "a@x.example", false},
		{"email_verified is not Entra's signal", `{"email":"a@x.example","email_verified":true}`, "a@x.example", false},
		{"verified_secondary_email", `{"email":"a@x.example","verified_secondary_email":["A@X.example"]}`, "a@x.example", true},
		{"another address verified", `{"email":"a@x.example","verified_primary_email":["b@x.example"]}`, "a@x.example", false},
		{"the address is not the token's", `{"email":"a@x.example","xms_edov":true}`, "b@x.example", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(c.claims), &claims); err != nil {
				t.Fatal(err)
			}
			if got := entraEmailVerified(claims, "email", c.email); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestEntraProbeAndReach: `check --online` and /readyz fetch a
// multi-tenant app's discovery document where the preset says, and accept
// its issuer template; the probe also asks Microsoft Graph.
func TestEntraProbeAndReach(t *testing.T) {
	f := newEntra(t)
	cfg := presetConfig("entra", providers.TypeEntra)
	cfg.Tenant, cfg.Tenants, cfg.BaseURL, cfg.GraphURL = "organizations", []string{tenantA}, f.op.URL, f.graph.URL
	r := testTypes().Probe(context.Background(), cfg, nil)
	if r.Type != providers.TypeEntra || r.Issuer != f.op.URL+"/{tenantid}/v2.0" || r.Worst() == providers.SeverityError {
		t.Fatalf("report %+v", r)
	}
	found := map[string]providers.Finding{}
	for _, fi := range r.Findings {
		found[fi.Check] = fi
	}
	if d := found["discovery"]; d.Severity != providers.SeverityOK || !strings.Contains(d.Message, "/organizations/v2.0/.well-known/openid-configuration") {
		t.Errorf("discovery finding %+v", d)
	}
	if g := found["graph_url"]; g.Severity != providers.SeverityOK || !strings.Contains(g.Message, "answers (HTTP 401)") {
		t.Errorf("graph finding %+v", g)
	}
	if err := providers.Reach(context.Background(), openPresetForTest(t, cfg, providers.Options{})); err != nil {
		t.Errorf("reach: %v", err)
	}
}
