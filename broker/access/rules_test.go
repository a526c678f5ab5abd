package access

import (
	"fmt"
	"testing"
	"time"

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

func get(path string) Request {
	return Request{Method: "GET", Host: "app.example.com", Path: path}
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
	p := Compile(append(slicesClone(siteRoutes),
		Route{Path: "/api/", Methods: []string{"DELETE", "PUT"}, AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		Route{Path: "/", Host: "admin.example.com", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		Route{Path: "/", Host: ".docs.example.com", AccessRule: AccessRule{Public: true}},
	), AccessRule{})
	cases := []struct {
		req  Request
		want Decision // for nobody signed in; bob is asked too below
	}{
		{get("/static/"), Public},
		{get("/static"), Public}, // the prefix's own path
		{get("/static/css/site.css"), Public},
		{get("/staticx"), Unauthenticated},
		{get("/STATIC/x"), Unauthenticated}, // paths are case-sensitive
		{get("/user/42/public"), Public},
		{get("/user/42/public/"), Public},
		{get("/user/42/public/more"), Unauthenticated}, // exact: nothing below it
		{get("/user//public"), Unauthenticated},        // {id} is one non-empty segment
		{get("/user/42/43/public"), Unauthenticated},
		{get("/user/public"), Unauthenticated},
		{get("/healthz"), Public},
		{get("/healthz/"), Public},
		{get("/healthzz"), Unauthenticated},
		{get("/"), Public}, // /{$}: the root only
		{get("/index.html"), Unauthenticated},
		{get("/admin"), Unauthenticated},
		{Request{Method: "GET", Host: "admin.example.com", Path: "/static/x"}, Public}, // first match wins
		{Request{Method: "GET", Host: "docs.example.com", Path: "/x"}, Public},
		{Request{Method: "GET", Host: "v2.Docs.Example.com", Path: "/x"}, Public},
		{Request{Method: "GET", Host: "xdocs.example.com", Path: "/x"}, Unauthenticated},
		{Request{Method: "GET", Host: "docs.example.com.", Path: "/x"}, Public}, // a trailing dot names the same host
	}
	for _, c := range cases {
		if got, reason := p.Decide(c.req, nil); got != c.want {
			t.Errorf("%+v: %v (%s), want %v", c.req, got, reason, c.want)
		}
	}
	// Methods and hosts, for bob (no admins group).
	bobCases := []struct {
		req  Request
		want Decision
	}{
		{get("/api/items"), Allowed},
		{Request{Method: "DELETE", Host: "app.example.com", Path: "/api/items"}, Forbidden},
		{Request{Method: "delete", Host: "app.example.com", Path: "/api/items"}, Forbidden}, // read in upper case too
		{Request{Method: "POST", Host: "app.example.com", Path: "/api/items", MethodOverride: "DELETE"}, Forbidden},
		{Request{Method: "POST", Host: "app.example.com", Path: "/api/items", MethodOverride: "patch, put"}, Forbidden},
		{Request{Method: "POST", Host: "app.example.com", Path: "/api/items"}, Allowed},
		{Request{Method: "GET", Host: "admin.example.com", Path: "/x"}, Forbidden},
		{Request{Method: "GET", Host: "ADMIN.example.com", Path: "/x"}, Forbidden},
		{Request{Method: "GET", Host: "admin.example.com.", Path: "/x"}, Forbidden},
		{Request{Method: "GET", Host: "x.admin.example.com", Path: "/x"}, Allowed}, // exact host only
	}
	for _, c := range bobCases {
		if got, reason := p.Decide(c.req, ruleBob); got != c.want {
			t.Errorf("bob %+v: %v (%s), want %v", c.req, got, reason, c.want)
		}
	}
}

func slicesClone(r []Route) []Route { return append([]Route(nil), r...) }

func TestConditions(t *testing.T) {
	rule := func(a AccessRule) *Policy { return Compile(nil, a) }
	incomplete := *ruleAlice
	incomplete.GroupsIncomplete = true
	cases := []struct {
		name string
		rule AccessRule
		id   *providers.Identity
		want Decision
	}{
		{"zero rule: any signed-in user", AccessRule{}, ruleCarol, Allowed},
		{"zero rule: nobody signed in", AccessRule{}, nil, Unauthenticated},
		{"public: nobody signed in", AccessRule{Public: true}, nil, Public},
		{"public: signed in", AccessRule{Public: true}, ruleBob, Public},
		{"one_of met", AccessRule{Groups: GroupCondition{OneOf: []string{"ops", "admins"}}}, ruleAlice, Allowed},
		{"one_of not met", AccessRule{Groups: GroupCondition{OneOf: []string{"ops", "admins"}}}, ruleBob, Forbidden},
		{"one_of, no groups", AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}, ruleCarol, Forbidden},
		{"one_of is case-sensitive", AccessRule{Groups: GroupCondition{OneOf: []string{"Admins"}}}, ruleAlice, Forbidden},
		{"all_of met", AccessRule{Groups: GroupCondition{AllOf: []string{"admins", "engineering"}}}, ruleAlice, Allowed},
		{"all_of partly met", AccessRule{Groups: GroupCondition{AllOf: []string{"admins", "engineering"}}}, ruleBob, Forbidden},
		{"none_of met", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, ruleAlice, Allowed},
		{"none_of not met", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, ruleEve, Forbidden},
		{"none_of with an incomplete group list", AccessRule{Groups: GroupCondition{NoneOf: []string{"contractors"}}}, &incomplete, Forbidden},
		{"email domain", AccessRule{EmailDomains: []string{"example.com"}}, ruleBob, Allowed},
		{"email domain in another case", AccessRule{EmailDomains: []string{"Example.COM"}}, ruleBob, Allowed},
		{"email domain: unverified email", AccessRule{EmailDomains: []string{"example.com"}}, ruleCarol, Forbidden},
		{"email domain: subdomain not listed", AccessRule{EmailDomains: []string{"example.com"}}, ruleDan, Forbidden},
		{"email domain: .domain takes subdomains", AccessRule{EmailDomains: []string{".example.com"}}, ruleDan, Allowed},
		{"email domain: .domain takes the domain", AccessRule{EmailDomains: []string{".example.com"}}, ruleBob, Allowed},
		{"email domain: suffix is not a domain", AccessRule{EmailDomains: []string{"ample.com"}}, ruleBob, Forbidden},
		{"provider", AccessRule{Providers: []string{"corp"}}, ruleBob, Allowed},
		{"provider not met", AccessRule{Providers: []string{"corp"}}, ruleCarol, Forbidden},
		{"user", AccessRule{Users: []string{"social:3"}}, ruleCarol, Allowed},
		{"user of another provider", AccessRule{Users: []string{"corp:3"}}, ruleCarol, Forbidden},
		{"user with a colon in sub", AccessRule{Users: []string{"x:a:b"}}, &providers.Identity{Provider: "x", Subject: "a:b"}, Allowed},
		{"conditions are ANDed", AccessRule{Providers: []string{"corp"}, Groups: GroupCondition{OneOf: []string{"admins"}}}, ruleBob, Forbidden},
		{"conditions are ANDed, all met", AccessRule{Providers: []string{"corp"}, EmailDomains: []string{"example.com"},
			Groups: GroupCondition{OneOf: []string{"admins"}, NoneOf: []string{"contractors"}}}, ruleAlice, Allowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, reason := rule(c.rule).Decide(get("/x"), c.id); got != c.want {
				t.Errorf("%v (%s), want %v", got, reason, c.want)
			}
		})
	}
}

// TestAndOfOr: "starving AND (artist OR programmer)".
func TestAndOfOr(t *testing.T) {
	p := Compile(nil, AccessRule{Groups: GroupCondition{AllOf: []string{"starving"}, OneOf: []string{"artist", "programmer"}}})
	for _, c := range []struct {
		groups []string
		want   Decision
	}{
		{[]string{"starving", "artist"}, Allowed},
		{[]string{"programmer", "starving"}, Allowed},
		{[]string{"starving", "artist", "programmer"}, Allowed},
		{[]string{"starving"}, Forbidden},
		{[]string{"artist", "programmer"}, Forbidden},
		{nil, Forbidden},
	} {
		id := &providers.Identity{Provider: "corp", Subject: "x", Groups: c.groups}
		if got, reason := p.Decide(get("/"), id); got != c.want {
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
		want Decision
	}{
		{"zero default, signed in", AccessRule{}, ruleCarol, "/x", Allowed},
		{"zero default, anonymous", AccessRule{}, nil, "/x", Unauthenticated},
		{"restricted default", admins, ruleBob, "/x", Forbidden},
		{"restricted default, met", admins, ruleAlice, "/x", Allowed},
		{"restricted default, a route matches first", admins, ruleBob, "/public/x", Public},
		{"restricted default, anonymous", admins, nil, "/x", Unauthenticated},
		{"public default", AccessRule{Public: true}, nil, "/x", Public},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, reason := Compile(routes, c.dflt).Decide(get(c.path), c.id); got != c.want {
				t.Errorf("%v (%s), want %v", got, reason, c.want)
			}
		})
	}
	var nilPolicy *Policy
	if got, _ := nilPolicy.Decide(get("/x"), ruleCarol); got != Allowed {
		t.Errorf("no Policy: %v", got)
	}
}

// TestPathNormalisationAttacks: a path that some server reads as another
// route's path never gets a more permissive answer than that route gives.
func TestPathNormalisationAttacks(t *testing.T) {
	p := Compile([]Route{
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
		if got, _ := p.Decide(get(path), nil); got == Public {
			t.Errorf("%q is public to an anonymous client", path)
		}
		if got, _ := p.Decide(get(path), ruleBob); got != Forbidden {
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
		if got, reason := p.Decide(get(path), nil); got != Public {
			t.Errorf("%q: %v (%s), want public", path, got, reason)
		}
	}
}

// TestUnknownRequest: a request nothing is known about (forward-auth from
// an untrusted peer) is decided by every rule that may apply: never public
// unless every rule is, and a signed-in user must meet them all.
func TestUnknownRequest(t *testing.T) {
	p := Compile(siteRoutes, AccessRule{})
	unknown := Request{}
	if got, _ := p.Decide(unknown, nil); got != Unauthenticated {
		t.Errorf("anonymous: %v", got)
	}
	if got, reason := p.Decide(unknown, ruleBob); got != Forbidden || reason != `route "/admin/" (may apply: the request is not fully known): needs group one_of [admins]` {
		t.Errorf("bob: %v %q", got, reason)
	}
	if got, _ := p.Decide(unknown, ruleAlice); got != Allowed {
		t.Errorf("alice: %v", got)
	}
	// Only public routes and a zero default: the session decides.
	q := Compile([]Route{{Path: "/static/", AccessRule: AccessRule{Public: true}}}, AccessRule{})
	if got, _ := q.Decide(unknown, nil); got != Unauthenticated {
		t.Errorf("anonymous, public routes only: %v", got)
	}
	if got, _ := q.Decide(unknown, ruleCarol); got != Allowed {
		t.Errorf("carol, public routes only: %v", got)
	}
	// "/" matches every path, known or not.
	r := Compile([]Route{{Path: "/", AccessRule: AccessRule{Public: true}}}, AccessRule{Groups: GroupCondition{OneOf: []string{"x"}}})
	if got, _ := r.Decide(unknown, nil); got != Public {
		t.Errorf("route / on an unknown request: %v", got)
	}
	// Partly known: the method is unknown, so a method-restricted route may apply.
	s := Compile([]Route{{Path: "/api/", Methods: []string{"DELETE"}, AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}}}, AccessRule{})
	if got, _ := s.Decide(Request{Path: "/api/x"}, ruleBob); got != Forbidden {
		t.Errorf("unknown method: %v", got)
	}
	if got, _ := s.Decide(Request{Method: "GET", Path: "/api/x"}, ruleBob); got != Allowed {
		t.Errorf("known method: %v", got)
	}
}

func TestAccessReasons(t *testing.T) {
	p := Compile([]Route{
		{Path: "/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}},
		{Path: "/art/", Host: "Studio.example.com", Methods: []string{"GET", "POST"},
			AccessRule: AccessRule{Groups: GroupCondition{AllOf: []string{"starving"}, OneOf: []string{"artist", "programmer"}, NoneOf: []string{"contractors"}}}},
	}, AccessRule{EmailDomains: []string{"example.com"}})
	studio := func(path string) Request {
		return Request{Method: "GET", Host: "studio.example.com", Path: path}
	}
	cases := []struct {
		req  Request
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
		if _, got := p.Decide(c.req, c.id); got != c.want {
			t.Errorf("%+v, %v:\n got %q\nwant %q", c.req, c.id, got, c.want)
		}
	}
	if _, got := p.Decide(get("/x"), ruleBob); got != "" {
		t.Errorf("reason for an allowed request: %q", got)
	}
}

func TestAccessDoesNotAllocate(t *testing.T) {
	p := Compile(benchRoutes(), AccessRule{})
	for _, c := range []struct {
		req Request
		id  *providers.Identity
	}{
		{get("/app/19/settings"), ruleAlice},
		{get("/static/app.css"), nil},
		{get("/team/4/"), ruleBob}, // denied: the reason is prepared
		{get("/nothing/here"), ruleBob},
	} {
		if n := testing.AllocsPerRun(100, func() { p.Decide(c.req, c.id) }); n != 0 {
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
	p := Compile(benchRoutes(), AccessRule{})
	for _, c := range []struct {
		name string
		req  Request
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
				p.Decide(c.req, c.id)
			}
		})
	}
}

// TestDecideReadsTheClockForMaxAgeOnly: the clock is read (a time.Now on
// every forward-auth check) only by a policy with a step-up's max_age, and
// such a policy still judges max_age by it.
func TestDecideReadsTheClockForMaxAgeOnly(t *testing.T) {
	authn := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	id := &providers.Identity{Provider: "corp", Subject: "1", AuthnTime: authn}
	for _, c := range []struct {
		name   string
		p      *Policy
		reads  bool
		decide Decision // at authn + 1h
	}{
		{"no step-up", Compile(siteRoutes, Rule{}), false, Allowed},
		{"acr only", Compile([]Route{{Path: "/", AccessRule: AccessRule{StepUp: StepUp{ACRValues: []string{"gold"}}}}}, Rule{}), false, StepUpNeeded},
		{"max_age on a route", Compile([]Route{{Path: "/", AccessRule: AccessRule{StepUp: StepUp{MaxAge: time.Minute}}}}, Rule{}), true, StepUpNeeded},
		{"max_age by default", Compile(nil, Rule{StepUp: StepUp{MaxAge: time.Minute}}), true, StepUpNeeded},
		{"max_age met", Compile(nil, Rule{StepUp: StepUp{MaxAge: 2 * time.Hour}}), true, Allowed},
		{"Required with max_age", Required(Rule{StepUp: StepUp{MaxAge: time.Minute}}), true, StepUpNeeded},
	} {
		reads := 0
		c.p.WithClock(func() time.Time { reads++; return authn.Add(time.Hour) })
		d, _, _ := c.p.DecideStepUp(get("/x"), id)
		if d != c.decide || (reads > 0) != c.reads {
			t.Errorf("%s: %v, clock read %d times; want %v, read: %v", c.name, d, reads, c.decide, c.reads)
		}
	}
}
