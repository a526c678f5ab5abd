package broker

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Identities for the rule tables.
var (
	ruleAlice = &providers.Identity{Provider: "corp", Subject: "1", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"admins", "engineering"}}
	ruleBob   = &providers.Identity{Provider: "corp", Subject: "2", Email: "bob@example.com", EmailVerified: true, Groups: []string{"engineering"}}
	ruleCarol = &providers.Identity{Provider: "social", Subject: "3", Email: "carol@example.com", EmailVerified: false}
	ruleDan   = &providers.Identity{Provider: "corp", Subject: "4", Email: "dan@eu.example.com", EmailVerified: true,
		Groups: []string{"starving", "artist"}}
	ruleEve = &providers.Identity{Provider: "corp", Subject: "5", Email: "eve@example.org", EmailVerified: true,
		Groups: []string{"starving", "contractors"}}
)

func get(path string) accessRequest {
	return accessRequest{Method: "GET", Host: "app.example.com", Path: path}
}

// siteRoutes is a typical site: static and a user's public page for
// everyone, /admin/ for admins, everything else for any signed-in user.
var siteRoutes = []Route{
	{Path: "/static/", AccessRule: AccessRule{Public: true}},
	{Path: "/user/{id}/public", AccessRule: AccessRule{Public: true}},
	{Path: "/healthz", AccessRule: AccessRule{Public: true}},
	{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
	{Path: "/{$}", AccessRule: AccessRule{Public: true}},
}

func TestRouteMatching(t *testing.T) {
	p := compilePolicy(append(slicesClone(siteRoutes),
		Route{Path: "/api/", Methods: []string{"DELETE", "PUT"}, AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		Route{Path: "/", Host: "admin.example.com", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		Route{Path: "/", Host: ".docs.example.com", AccessRule: AccessRule{Public: true}},
	), AccessRule{})
	cases := []struct {
		req  accessRequest
		want decision // for nobody signed in; bob is asked too below
	}{
		{get("/static/"), public},
		{get("/static"), public}, // the prefix's own path
		{get("/static/css/site.css"), public},
		{get("/staticx"), unauthenticated},
		{get("/STATIC/x"), unauthenticated}, // paths are case-sensitive
		{get("/user/42/public"), public},
		{get("/user/42/public/"), public},
		{get("/user/42/public/more"), unauthenticated}, // exact: nothing below it
		{get("/user//public"), unauthenticated},        // {id} is one non-empty segment
		{get("/user/42/43/public"), unauthenticated},
		{get("/user/public"), unauthenticated},
		{get("/healthz"), public},
		{get("/healthz/"), public},
		{get("/healthzz"), unauthenticated},
		{get("/"), public}, // /{$}: the root only
		{get("/index.html"), unauthenticated},
		{get("/admin"), unauthenticated},
		{accessRequest{Method: "GET", Host: "admin.example.com", Path: "/static/x"}, public}, // first match wins
		{accessRequest{Method: "GET", Host: "docs.example.com", Path: "/x"}, public},
		{accessRequest{Method: "GET", Host: "v2.Docs.Example.com", Path: "/x"}, public},
		{accessRequest{Method: "GET", Host: "xdocs.example.com", Path: "/x"}, unauthenticated},
		{accessRequest{Method: "GET", Host: "docs.example.com.", Path: "/x"}, public}, // a trailing dot names the same host
	}
	for _, c := range cases {
		if got, reason := p.decide(c.req, nil); got != c.want {
			t.Errorf("%+v: %v (%s), want %v", c.req, got, reason, c.want)
		}
	}
	// Methods and hosts, for bob (no admins group).
	bobCases := []struct {
		req  accessRequest
		want decision
	}{
		{get("/api/items"), allowed},
		{accessRequest{Method: "DELETE", Host: "app.example.com", Path: "/api/items"}, forbidden},
		{accessRequest{Method: "delete", Host: "app.example.com", Path: "/api/items"}, forbidden}, // read in upper case too
		{accessRequest{Method: "POST", Host: "app.example.com", Path: "/api/items", MethodOverride: "DELETE"}, forbidden},
		{accessRequest{Method: "POST", Host: "app.example.com", Path: "/api/items", MethodOverride: "patch, put"}, forbidden},
		{accessRequest{Method: "POST", Host: "app.example.com", Path: "/api/items"}, allowed},
		{accessRequest{Method: "GET", Host: "admin.example.com", Path: "/x"}, forbidden},
		{accessRequest{Method: "GET", Host: "ADMIN.example.com", Path: "/x"}, forbidden},
		{accessRequest{Method: "GET", Host: "admin.example.com.", Path: "/x"}, forbidden},
		{accessRequest{Method: "GET", Host: "x.admin.example.com", Path: "/x"}, allowed}, // exact host only
	}
	for _, c := range bobCases {
		if got, reason := p.decide(c.req, ruleBob); got != c.want {
			t.Errorf("bob %+v: %v (%s), want %v", c.req, got, reason, c.want)
		}
	}
}

func slicesClone(r []Route) []Route { return append([]Route(nil), r...) }

func TestConditions(t *testing.T) {
	rule := func(a AccessRule) *policy { return compilePolicy(nil, a) }
	incomplete := *ruleAlice
	incomplete.GroupsIncomplete = true
	cases := []struct {
		name string
		rule AccessRule
		id   *providers.Identity
		want decision
	}{
		{"zero rule: any signed-in user", AccessRule{}, ruleCarol, allowed},
		{"zero rule: nobody signed in", AccessRule{}, nil, unauthenticated},
		{"public: nobody signed in", AccessRule{Public: true}, nil, public},
		{"public: signed in", AccessRule{Public: true}, ruleBob, public},
		{"one_of met", AccessRule{Groups: GroupCondition{OneOf: []string{"ops", "admins"}}}, ruleAlice, allowed},
		{"one_of not met", AccessRule{Groups: GroupCondition{OneOf: []string{"ops", "admins"}}}, ruleBob, forbidden},
		{"one_of, no groups", AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}, ruleCarol, forbidden},
		{"one_of is case-sensitive", AccessRule{Groups: GroupCondition{OneOf: []string{"Admins"}}}, ruleAlice, forbidden},
		{"all_of met", AccessRule{Groups: GroupCondition{AllOf: []string{"admins", "engineering"}}}, ruleAlice, allowed},
		{"all_of partly met", AccessRule{Groups: GroupCondition{AllOf: []string{"admins", "engineering"}}}, ruleBob, forbidden},
		{"none_of met", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, ruleAlice, allowed},
		{"none_of not met", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, ruleEve, forbidden},
		{"none_of with an incomplete group list", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, &incomplete, forbidden},
		{"email domain", AccessRule{EmailDomains: []string{"example.com"}}, ruleBob, allowed},
		{"email domain in another case", AccessRule{EmailDomains: []string{"Example.COM"}}, ruleBob, allowed},
		{"email domain: unverified email", AccessRule{EmailDomains: []string{"example.com"}}, ruleCarol, forbidden},
		{"email domain: subdomain not listed", AccessRule{EmailDomains: []string{"example.com"}}, ruleDan, forbidden},
		{"email domain: .domain takes subdomains", AccessRule{EmailDomains: []string{".example.com"}}, ruleDan, allowed},
		{"email domain: .domain takes the domain", AccessRule{EmailDomains: []string{".example.com"}}, ruleBob, allowed},
		{"email domain: suffix is not a domain", AccessRule{EmailDomains: []string{"ample.com"}}, ruleBob, forbidden},
		{"provider", AccessRule{Providers: []string{"corp"}}, ruleBob, allowed},
		{"provider not met", AccessRule{Providers: []string{"corp"}}, ruleCarol, forbidden},
		{"user", AccessRule{Users: []string{"social:3"}}, ruleCarol, allowed},
		{"user of another provider", AccessRule{Users: []string{"corp:3"}}, ruleCarol, forbidden},
		{"user with a colon in sub", AccessRule{Users: []string{"x:a:b"}}, &providers.Identity{Provider: "x", Subject: "a:b"}, allowed},
		{"conditions are ANDed", AccessRule{Providers: []string{"corp"}, Groups: GroupCondition{OneOf: []string{"admins"}}}, ruleBob, forbidden},
		{"conditions are ANDed, all met", AccessRule{Providers: []string{"corp"}, EmailDomains: []string{"example.com"},
			Groups: GroupCondition{OneOf: []string{"admins"}, NoneOf: []string{"contractors"}}}, ruleAlice, allowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, reason := rule(c.rule).decide(get("/x"), c.id); got != c.want {
				t.Errorf("%v (%s), want %v", got, reason, c.want)
			}
		})
	}
}

// TestAndOfOr: "starving AND (artist OR programmer)".
func TestAndOfOr(t *testing.T) {
	p := compilePolicy(nil, AccessRule{Groups: GroupCondition{AllOf: []string{"starving"}, OneOf: []string{"artist", "programmer"}}})
	for _, c := range []struct {
		groups []string
		want   decision
	}{
		{[]string{"starving", "artist"}, allowed},
		{[]string{"programmer", "starving"}, allowed},
		{[]string{"starving", "artist", "programmer"}, allowed},
		{[]string{"starving"}, forbidden},
		{[]string{"artist", "programmer"}, forbidden},
		{nil, forbidden},
	} {
		id := &providers.Identity{Provider: "corp", Subject: "x", Groups: c.groups}
		if got, reason := p.decide(get("/"), id); got != c.want {
			t.Errorf("%v: %v (%s), want %v", c.groups, got, reason, c.want)
		}
	}
}

func TestDefaultRule(t *testing.T) {
	routes := []Route{{Path: "/public/", AccessRule: AccessRule{Public: true}}}
	admins := AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}
	cases := []struct {
		name string
		dflt AccessRule
		id   *providers.Identity
		path string
		want decision
	}{
		{"zero default, signed in", AccessRule{}, ruleCarol, "/x", allowed},
		{"zero default, anonymous", AccessRule{}, nil, "/x", unauthenticated},
		{"restricted default", admins, ruleBob, "/x", forbidden},
		{"restricted default, met", admins, ruleAlice, "/x", allowed},
		{"restricted default, a route matches first", admins, ruleBob, "/public/x", public},
		{"restricted default, anonymous", admins, nil, "/x", unauthenticated},
		{"public default", AccessRule{Public: true}, nil, "/x", public},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, reason := compilePolicy(routes, c.dflt).decide(get(c.path), c.id); got != c.want {
				t.Errorf("%v (%s), want %v", got, reason, c.want)
			}
		})
	}
	var nilPolicy *policy
	if got, _ := nilPolicy.decide(get("/x"), ruleCarol); got != allowed {
		t.Errorf("no policy: %v", got)
	}
}

// TestPathNormalisationAttacks: a path that some server reads as another
// route's path never gets a more permissive answer than that route gives.
func TestPathNormalisationAttacks(t *testing.T) {
	p := compilePolicy([]Route{
		{Path: "/public/", AccessRule: AccessRule{Public: true}},
		{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
	}, AccessRule{})
	notPublic := []string{
		"/public/..%2Fadmin",
		"/public/..%2fadmin/users",
		"/public/%2e%2e/admin",
		"/public/%2E%2E%2Fadmin",
		"/public/.%2e/admin",
		"/public/%252e%252e/admin",   // decoded twice
		"/public/..%252Fadmin",       // decoded twice
		"/public/..;/admin",          // Tomcat path parameters
		"/public/..;x=1/admin",       // Tomcat path parameters
		`/public/..\admin`,           // backslash as slash
		"/public/..%5Cadmin",         // encoded backslash
		"/public/../admin",           // a raw dot-segment
		"/public//../admin",          // .. after an empty segment
		"/admin/../public/x",         // a raw-prefix router sees /admin/
		"/admin/%2e%2e/public/x",     // the same, encoded
		"/admin/..%2Fpublic/x",       // an encoded slash keeps /admin/ for some
		"/public/%zz",                // does not decode: unknown
		"public/x",                   // not a path: unknown
		"/public/x/..%2F..%2Fadmin/", // climbs out
	}
	for _, path := range notPublic {
		if got, _ := p.decide(get(path), nil); got == public {
			t.Errorf("%q is public to an anonymous client", path)
		}
		if got, _ := p.decide(get(path), ruleBob); got != forbidden {
			t.Errorf("%q: bob gets %v, want forbidden (some reading is /admin/)", path, got)
		}
	}
	stillPublic := []string{
		"/public/x",
		"/public/./x",
		"/public//x",
		"/public/a%2Fb",
		"/public/caf%C3%A9",
		"/public/x;jsessionid=1",
		"/public/a/../b",
		"/public",
	}
	for _, path := range stillPublic {
		if got, reason := p.decide(get(path), nil); got != public {
			t.Errorf("%q: %v (%s), want public", path, got, reason)
		}
	}
}

// TestUnknownRequest: a request nothing is known about (forward-auth from
// an untrusted peer) is decided by every rule that may apply: never public
// unless every rule is, and a signed-in user must meet them all.
func TestUnknownRequest(t *testing.T) {
	p := compilePolicy(siteRoutes, AccessRule{})
	unknown := accessRequest{}
	if got, _ := p.decide(unknown, nil); got != unauthenticated {
		t.Errorf("anonymous: %v", got)
	}
	if got, reason := p.decide(unknown, ruleBob); got != forbidden || reason != `route "/admin/" (may apply: the request is not fully known): needs group one_of [admins]` {
		t.Errorf("bob: %v %q", got, reason)
	}
	if got, _ := p.decide(unknown, ruleAlice); got != allowed {
		t.Errorf("alice: %v", got)
	}
	// Only public routes and a zero default: the session decides.
	q := compilePolicy([]Route{{Path: "/static/", AccessRule: AccessRule{Public: true}}}, AccessRule{})
	if got, _ := q.decide(unknown, nil); got != unauthenticated {
		t.Errorf("anonymous, public routes only: %v", got)
	}
	if got, _ := q.decide(unknown, ruleCarol); got != allowed {
		t.Errorf("carol, public routes only: %v", got)
	}
	// "/" matches every path, known or not.
	r := compilePolicy([]Route{{Path: "/", AccessRule: AccessRule{Public: true}}}, AccessRule{Groups: GroupCondition{OneOf: []string{"x"}}})
	if got, _ := r.decide(unknown, nil); got != public {
		t.Errorf("route / on an unknown request: %v", got)
	}
	// Partly known: the method is unknown, so a method-restricted route may apply.
	s := compilePolicy([]Route{{Path: "/api/", Methods: []string{"DELETE"}, AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}}}, AccessRule{})
	if got, _ := s.decide(accessRequest{Path: "/api/x"}, ruleBob); got != forbidden {
		t.Errorf("unknown method: %v", got)
	}
	if got, _ := s.decide(accessRequest{Method: "GET", Path: "/api/x"}, ruleBob); got != allowed {
		t.Errorf("known method: %v", got)
	}
}

func TestAccessReasons(t *testing.T) {
	p := compilePolicy([]Route{
		{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		{Path: "/art/", Host: "Studio.example.com", Methods: []string{"GET", "POST"},
			AccessRule: AccessRule{Groups: GroupCondition{AllOf: []string{"starving"}, OneOf: []string{"artist", "programmer"}, NoneOf: []string{"contractors"}}}},
	}, AccessRule{EmailDomains: []string{"example.com"}})
	studio := func(path string) accessRequest {
		return accessRequest{Method: "GET", Host: "studio.example.com", Path: path}
	}
	cases := []struct {
		req  accessRequest
		id   *providers.Identity
		want string
	}{
		{get("/admin/x"), ruleBob, `route "/admin/": needs group one_of [admins]`},
		{get("/admin/x"), nil, `route "/admin/": not signed in`},
		{get("/x"), ruleDan, `default rule: needs a verified email in [example.com]`},
		{studio("/art/x"), ruleBob, `route "GET,POST studio.example.com/art/": needs group one_of [artist programmer]`},
		{studio("/art/x"), ruleAlice, `route "GET,POST studio.example.com/art/": needs group one_of [artist programmer]`},
		{studio("/art/x"), ruleEve, `route "GET,POST studio.example.com/art/": needs group one_of [artist programmer]`},
		{studio("/art/x"), &providers.Identity{Groups: []string{"starving", "artist", "contractors"}},
			`route "GET,POST studio.example.com/art/": needs group none_of [contractors]`},
		{studio("/art/x"), &providers.Identity{Groups: []string{"artist"}},
			`route "GET,POST studio.example.com/art/": needs group all_of [starving]`},
		{studio("/art/x"), &providers.Identity{Groups: []string{"starving", "artist"}, GroupsIncomplete: true},
			`route "GET,POST studio.example.com/art/": needs group none_of [contractors], and the IdP's group list is incomplete`},
	}
	for _, c := range cases {
		if _, got := p.decide(c.req, c.id); got != c.want {
			t.Errorf("%+v, %v:\n got %q\nwant %q", c.req, c.id, got, c.want)
		}
	}
	if _, got := p.decide(get("/x"), ruleBob); got != "" {
		t.Errorf("reason for an allowed request: %q", got)
	}
}

func TestAccessDoesNotAllocate(t *testing.T) {
	p := compilePolicy(benchRoutes(), AccessRule{})
	for _, c := range []struct {
		req accessRequest
		id  *providers.Identity
	}{
		{get("/app/19/settings"), ruleAlice},
		{get("/static/app.css"), nil},
		{get("/team/4/"), ruleBob}, // denied: the reason is prepared
		{get("/nothing/here"), ruleBob},
	} {
		if n := testing.AllocsPerRun(100, func() { p.decide(c.req, c.id) }); n != 0 {
			t.Errorf("%s: %v allocations", c.req.Path, n)
		}
	}
}

// benchRoutes are twenty routes of every kind.
func benchRoutes() []Route {
	var rs []Route
	for i := range 5 {
		rs = append(rs,
			Route{Path: fmt.Sprintf("/team/%d/", i), AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{fmt.Sprintf("team-%d", i), "admins"}}}},
			Route{Path: fmt.Sprintf("/app/%d/settings", i), Methods: []string{"GET", "POST"}, AccessRule: AccessRule{Groups: GroupCondition{AllOf: []string{"admins"}}, EmailDomains: []string{"example.com"}}},
			Route{Path: fmt.Sprintf("/user/{id}/public/%d/", i), AccessRule: AccessRule{Public: true}},
			Route{Path: fmt.Sprintf("/svc/%d/", i), Host: ".example.com", AccessRule: AccessRule{Providers: []string{"corp"}, Groups: GroupCondition{NoneOf: []string{"contractors"}}}},
		)
	}
	rs[3] = Route{Path: "/static/", AccessRule: AccessRule{Public: true}}
	rs = append(rs, Route{Path: "/app/19/settings", AccessRule: AccessRule{Users: []string{"corp:1"}}})
	return rs
}

// BenchmarkAccess decides requests against twenty routes: an early and a
// late match, a denial, the default rule, and a path that needs readings.
func BenchmarkAccess(b *testing.B) {
	p := compilePolicy(benchRoutes(), AccessRule{})
	for _, c := range []struct {
		name string
		req  accessRequest
		id   *providers.Identity
	}{
		{"early match", get("/team/0/x"), ruleAlice},
		{"late match", get("/app/19/settings"), ruleAlice},
		{"denied", get("/team/4/"), ruleBob},
		{"default", get("/nothing/here/at/all"), ruleBob},
		{"public, anonymous", get("/static/app.css"), nil},
		{"encoded path", get("/team/0/..%2Fx/%C3%A9"), ruleAlice},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.decide(c.req, c.id)
			}
		})
	}
}

func TestAccessConfigProblems(t *testing.T) {
	yaml := `providers:
  - id: corp
    issuer: https://idp.example.com
    client_id: c
    client_secret: s
routes:
  - path: static/
    public: true
  - path: /a/../b
  - path: /user/{id/x
    methods: [get, POST, ""]
    host: "evil.example.com/x"
  - path: /x
    public: true
    groups: {one_of: [admins]}
  - path: /y
    groups: {all_of: [""], none_of: [ok, ""]}
    email_domains: ["@example.com", ".example.com"]
    providers: [corp, nope]
    users: ["corp:1", "nope:2", "justsub"]
  - path: "/a{$}"
  - path: /q?x
  - path: ""
default:
  providers: [gone]
redirect_hosts: [app.example.com, ".example.com:8443", "evil.com/x", "a.com:0", "*.example.com"]
`
	_, err := ParseConfig("broker.yaml", []byte(yaml), lookupIn(nil))
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		`line 7: routes[0].path: "static/" must start with /`,
		`line 9: routes[1].path: "/a/../b" must not contain "." or ".." segments`,
		`line 10: routes[2].path: "/user/{id/x" segment "{id": a wildcard is a whole segment`,
		`line 11: routes[2].methods[0]: "get" must be an upper-case method name`,
		`line 11: routes[2].methods[2]: "" must be an upper-case method name`,
		`line 12: routes[2].host: "evil.example.com/x" must be a host name or .domain`,
		`line 14: routes[3].public: cannot be combined with conditions`,
		`line 17: routes[4].groups.all_of[0]: must not be empty`,
		`line 17: routes[4].groups.none_of[1]: must not be empty`,
		`line 18: routes[4].email_domains[0]: "@example.com" must be a domain`,
		`line 19: routes[4].providers[1]: "nope" is not a configured provider`,
		`line 20: routes[4].users[1]: "nope" is not a configured provider`,
		`line 20: routes[4].users[2]: "justsub" must be <provider>:<sub>`,
		`line 21: routes[5].path: "/a{$}" segment "a{$}"`,
		`line 22: routes[6].path: "/q?x" must be a plain path`,
		`line 23: routes[7].path: "" is required`,
		`line 25: default.providers[0]: "gone" is not a configured provider`,
		`line 26: redirect_hosts[2]: "evil.com/x" must be a host name or .domain, optionally with :port`,
		`line 26: redirect_hosts[3]: "a.com:0" must be`,
		`line 26: redirect_hosts[4]: "*.example.com" must be`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q", w)
		}
	}
	if n := strings.Count(got, "\n"); n != len(want) {
		t.Errorf("%d problems, want %d:\n%s", n, len(want), got)
	}

	ok := `providers:
  - id: corp
    issuer: https://idp.example.com
    client_id: c
    client_secret: s
routes:
  - path: /static/
    public: true
  - path: /user/{id}/public
    public: true
  - path: /{$}
    public: true
  - path: /admin/
    methods: [GET, POST]
    host: .example.com
    groups: {one_of: [admins], all_of: [staff], none_of: [contractors]}
    email_domains: [example.com, .example.org]
    providers: [corp]
    users: ["corp:1"]
default:
  groups: {one_of: [staff]}
redirect_hosts: [app.example.com, ".example.com", "app.example.com:8443"]
`
	cfg, err := ParseConfig("broker.yaml", []byte(ok), lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 4 || !cfg.Routes[0].Public || cfg.Routes[3].Groups.AllOf[0] != "staff" || cfg.Default.Groups.OneOf[0] != "staff" ||
		len(cfg.RedirectHosts) != 3 {
		t.Errorf("decoded %+v", cfg)
	}
}

func TestAccessWarnings(t *testing.T) {
	c := Config{Routes: []Route{{Path: "/"}, {Path: "/x"}}}
	w := strings.Join(c.accessWarnings(), "\n")
	if !strings.Contains(w, "routes[0]: matches every request") || !strings.Contains(w, "trusted_proxies.from is empty") {
		t.Errorf("warnings: %s", w)
	}
	c.TrustedProxies.From = []string{"127.0.0.1"}
	c.Routes = c.Routes[1:]
	if w := c.accessWarnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}
