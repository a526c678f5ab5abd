package access

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Package access is the broker's access-rule language and its decision:
// `routes:` (the first route that matches a request decides) and
// `default:` (for requests no route matches), their checks (check.go), and
// the compiled Policy that decides a Request for an identity. The same
// rules decide the proxied requests, the forward-auth endpoint and the
// handlers of a program that embeds the broker. It also holds the one host
// matcher of the configuration's host lists (HostPattern, hosts.go).
// docs/access.md has the user's guide; the path readings are in paths.go.
//
// The package knows no HTTP route, session or header of the broker: it
// reads a Request and a *providers.Identity and returns a Decision.

// Route is an access rule for the requests it matches: path, and optionally
// methods and host.
type Route struct {
	// Path is a path pattern, matched against the request path after
	// normalisation (see docs/access.md): "/static/" (a trailing slash: the
	// path itself and everything below it), "/user/{id}/public" ({name}
	// matches one non-empty segment), "/{$}" (only the path before {$}),
	// otherwise exactly that path ("/health" also matches "/health/").
	Path string `yaml:"path"`
	// Methods, when set, restricts the route to these methods (upper case).
	Methods []string `yaml:"methods"`
	// Host, when set, restricts the route to one host name, or with a
	// leading dot (".example.com") to a domain and its subdomains.
	Host string `yaml:"host"`
	// AccessRule says who may make the requests the route matches.
	AccessRule `yaml:",inline"`
}

// AccessRule is Rule under the name Route embeds it by (and
// broker.AccessRule), so that Route{AccessRule: ...} reads as it always
// has.
type AccessRule = Rule

// Rule says who may make a request: anyone (Public), or a signed-in
// user who meets every condition that is set. The zero value allows every
// signed-in user.
type Rule struct {
	// Public lets anyone through, signed in or not. It cannot be combined
	// with conditions.
	Public bool `yaml:"public"`
	// Groups are conditions on the user's groups.
	Groups GroupCondition `yaml:"groups"`
	// EmailDomains, when set, requires a verified email address in one of
	// these domains (exact, or ".example.com" for the domain and its
	// subdomains).
	EmailDomains []string `yaml:"email_domains"`
	// Providers, when set, requires a sign-in through one of these
	// providers (ids).
	Providers []string `yaml:"providers"`
	// Users, when set, requires one of these users, as "<provider>:<sub>".
	Users []string `yaml:"users"`
	// StepUp asks more of the sign-in than who the user is: a recent one
	// (max_age), an authentication context (acr_values). A session that
	// does not meet it signs in again at its IdP (stepup.go).
	StepUp `yaml:",inline"`
}

// GroupCondition are conditions on the user's groups; each that is set must
// hold, so {all_of: [starving], one_of: [artist, programmer]} means
// "starving AND (artist OR programmer)".
type GroupCondition struct {
	// OneOf requires at least one of these groups.
	OneOf []string `yaml:"one_of"`
	// AllOf requires all of these groups.
	AllOf []string `yaml:"all_of"`
	// NoneOf requires none of these groups. When the IdP said its group
	// list is incomplete, it is not met.
	NoneOf []string `yaml:"none_of"`
}

// Request describes the request an access Decision is about: the
// request itself in proxy mode, or the one a trusted proxy describes on the
// forward-auth endpoint. An empty field is unknown.
type Request struct {
	Method string // as sent (any case)
	Host   string // host without port
	Path   string // the escaped path, as on the wire (no query)
	// MethodOverride holds the values of the method-override headers
	// (X-HTTP-Method-Override and friends), comma-separated: some apps act
	// on them, so they are read as the method too.
	MethodOverride string
}

// Decision is the outcome of the access rules.
type Decision int

const (
	Unauthenticated Decision = iota // sign in first (401 / redirect)
	Allowed                         // signed in and allowed
	Public                          // no sign-in needed
	Forbidden                       // signed in, not allowed (403)
	// StepUpNeeded: signed in and allowed, but the sign-in does not meet
	// the rule's max_age or acr_values: sign in again at the same IdP,
	// asking for them (DecideStepUp says what).
	StepUpNeeded
)

// severity orders decisions from the most to the least permissive. For one
// identity only four occur: Public, then Allowed, then StepUpNeeded, then
// Unauthenticated (nobody signed in) or Forbidden.
func severity(d Decision) int {
	switch d {
	case Public:
		return 0
	case Allowed:
		return 1
	case StepUpNeeded:
		return 2
	case Unauthenticated:
		return 3
	default:
		return 4
	}
}

// RequestOf describes r itself.
func RequestOf(r *http.Request) Request {
	return Request{Method: r.Method, Host: Hostname(r.Host), Path: r.URL.EscapedPath(),
		MethodOverride: MethodOverride(r.Header)}
}

// methodOverrideHeaders are the headers that common frameworks (Rails,
// Express's method-override, Symfony, ASP.NET) read as the request method.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// MethodOverride is the values of the method-override headers of h,
// comma-separated, for Request.MethodOverride.
func MethodOverride(h http.Header) string {
	var out string
	for _, name := range methodOverrideHeaders {
		for _, v := range h[name] {
			if out != "" {
				out += ","
			}
			out += v
		}
	}
	return out
}

// Policy is the compiled form of routes and default. A nil Policy allows
// every signed-in user.
type Policy struct {
	routes []compiledRoute
	dflt   compiledRule
	now    func() time.Time // WithClock; nil: time.Now
	// maxAges: some rule asks for a step-up's max_age, the one check that
	// reads the clock (DecideStepUp reads it only then).
	maxAges bool
}

type compiledRoute struct {
	pattern pathPattern
	methods []string    // upper case; empty: any
	host    HostPattern // zero: any host
	rule    compiledRule
}

// compiledRule is an AccessRule ready to check. Every reason string is made
// here, so that a Decision allocates nothing.
type compiledRule struct {
	public bool
	conds  []condition
	// unauth is the reason when nobody is signed in; [1] when the route
	// only may apply.
	unauth [2]string
	// stepUp is what the sign-in must meet (zero: nothing), and the
	// reason when it does not.
	stepUp       StepUp
	stepUpReason [2]string
}

type condKind int

const (
	condOneOf condKind = iota
	condAllOf
	condNoneOf
	condEmailDomain
	condProvider
	condUser
)

type condition struct {
	kind    condKind
	values  []string      // groups or provider ids
	domains []HostPattern // condEmailDomain
	users   []userRef     // condUser
	// reason is "<label>: needs ..."; [1] when the route only may apply.
	reason [2]string
	// incomplete is the reason for condNoneOf when the IdP's group list is
	// incomplete.
	incomplete [2]string
}

type userRef struct{ provider, subject string }

// Compile compiles validated rules (Problems found none).
func Compile(routes []Route, dflt Rule) *Policy {
	p := &Policy{dflt: compileRule("default rule", dflt)}
	for _, rt := range routes {
		label := rt.Path
		if rt.Host != "" {
			label = strings.ToLower(rt.Host) + label
		}
		if len(rt.Methods) > 0 {
			label = strings.Join(rt.Methods, ",") + " " + label
		}
		p.routes = append(p.routes, compiledRoute{
			pattern: compilePattern(rt.Path),
			methods: slices.Clone(rt.Methods),
			host:    mustHost(rt.Host),
			rule:    compileRule(fmt.Sprintf("route %q", label), rt.AccessRule),
		})
		p.maxAges = p.maxAges || p.routes[len(p.routes)-1].rule.stepUp.MaxAge > 0
	}
	p.maxAges = p.maxAges || p.dflt.stepUp.MaxAge > 0
	return p
}

// Required is the policy of one rule for every request: the embedding
// API's Require.
func Required(rule Rule) *Policy {
	p := &Policy{dflt: compileRule("required rule", rule)}
	p.maxAges = p.dflt.stepUp.MaxAge > 0
	return p
}

// mustHost is the pattern of a validated host ("" for any host).
func mustHost(h string) HostPattern {
	p, _ := ParseHostPattern(h)
	return p
}

func compileRule(label string, a Rule) compiledRule {
	labels := [2]string{label, label + " (may apply: the request is not fully known)"}
	both := func(format string, args ...any) [2]string {
		return [2]string{labels[0] + fmt.Sprintf(format, args...), labels[1] + fmt.Sprintf(format, args...)}
	}
	r := compiledRule{public: a.Public, unauth: both(": not signed in"), stepUp: a.StepUp.clone()}
	if a.StepUp.set() {
		r.stepUpReason = both(": needs a sign-in with %s", a.StepUp)
	}
	add := func(kind condKind, values []string, what string) {
		if len(values) == 0 {
			return
		}
		c := condition{kind: kind, values: values, reason: both(": needs %s %v", what, values)}
		switch kind {
		case condEmailDomain:
			for _, v := range values {
				c.domains = append(c.domains, mustHost(v))
			}
		case condUser:
			for _, u := range values {
				p, sub, _ := strings.Cut(u, ":")
				c.users = append(c.users, userRef{p, sub})
			}
		case condNoneOf:
			c.incomplete = both(": needs %s %v, and the IdP's group list is incomplete", what, values)
		}
		r.conds = append(r.conds, c)
	}
	add(condOneOf, a.Groups.OneOf, "group one_of")
	add(condAllOf, a.Groups.AllOf, "group all_of")
	add(condNoneOf, a.Groups.NoneOf, "group none_of")
	add(condEmailDomain, a.EmailDomains, "a verified email in")
	add(condProvider, a.Providers, "provider one of")
	add(condUser, a.Users, "user one of")
	return r
}

// Decide runs the rules. A request that every server reads the same way
// (the usual case) is decided once, without allocating. Otherwise it is
// decided once for each way a server might read it (paths.go), and it
// is granted only as far as every reading grants it: an app that reads
// /public/..%2Fadmin as /admin gets no public answer for it.
func (p *Policy) Decide(req Request, id *providers.Identity) (Decision, string) {
	d, why, _ := p.DecideStepUp(req, id)
	return d, why
}

// DecideStepUp is Decide, with what the sign-in must meet when the
// decision is StepUpNeeded.
func (p *Policy) DecideStepUp(req Request, id *providers.Identity) (Decision, string, StepUp) {
	if p == nil {
		p = &Policy{}
	}
	now := time.Time{}
	if id != nil && p.maxAges { // the clock matters only to a step-up's max_age
		now = p.clock()
	}
	if req.MethodOverride == "" && upperToken(req.Method) && simplePath(req.Path) {
		return p.decideOne(req.Method, req.Host, req.Path, id, now)
	}
	worst, why, up := Public, "", StepUp{}
	host := req.Host
	for _, m := range methodReadings(req) {
		for _, path := range pathReadings(req.Path) {
			if d, r, u := p.decideOne(m, host, path, id, now); severity(d) > severity(worst) {
				worst, why, up = d, r, u
			}
		}
	}
	return worst, why, up
}

// decideOne decides one reading of a request: the first route that matches
// decides. A route that may match (a part of the request it looks at is
// unknown) is applied as well, and the search goes on: the outcome is the
// strictest of all the rules that may apply, so not knowing the request
// never grants more than knowing it.
func (p *Policy) decideOne(method, host, path string, id *providers.Identity, now time.Time) (Decision, string, StepUp) {
	worst, why, up := Public, "", StepUp{}
	apply := func(r *compiledRule, m matchResult) {
		if d, reason := r.checkAt(id, m == matchMaybe, now); severity(d) > severity(worst) {
			worst, why, up = d, reason, r.stepUp
		}
	}
	for i := range p.routes {
		rt := &p.routes[i]
		m := rt.match(method, host, path)
		if m == matchNo {
			continue
		}
		apply(&rt.rule, m)
		if m == matchYes {
			return worst, why, up
		}
	}
	apply(&p.dflt, matchYes)
	return worst, why, up
}

type matchResult int

const (
	matchNo matchResult = iota
	matchMaybe
	matchYes
)

// match tells whether the route matches; an unknown ("") method, host or
// path may match.
func (rt *compiledRoute) match(method, host, path string) matchResult {
	m := matchYes
	if rt.host != (HostPattern{}) {
		switch {
		case host == "":
			m = matchMaybe
		case !rt.host.Match(host):
			return matchNo
		}
	}
	if len(rt.methods) > 0 {
		switch {
		case method == "":
			m = matchMaybe
		case !slices.Contains(rt.methods, method):
			return matchNo
		}
	}
	switch {
	case path == "":
		if !rt.pattern.all {
			m = matchMaybe
		}
	case !rt.pattern.match(path):
		return matchNo
	}
	return m
}

// check applies the rule to id; maybe says the route only may apply, for
// the reason.
func (r *compiledRule) check(id *providers.Identity, maybe bool) (Decision, string) {
	return r.checkAt(id, maybe, time.Now())
}

// checkAt is check, judging a step-up's max_age by now.
func (r *compiledRule) checkAt(id *providers.Identity, maybe bool, now time.Time) (Decision, string) {
	v := 0
	if maybe {
		v = 1
	}
	if r.public {
		return Public, ""
	}
	if id == nil {
		return Unauthenticated, r.unauth[v]
	}
	for i := range r.conds {
		c := &r.conds[i]
		if !c.met(id) {
			if c.kind == condNoneOf && id.GroupsIncomplete {
				return Forbidden, c.incomplete[v]
			}
			return Forbidden, c.reason[v]
		}
	}
	if r.stepUp.set() && !r.stepUp.MetBy(*id, now) {
		return StepUpNeeded, r.stepUpReason[v]
	}
	return Allowed, ""
}

func (c *condition) met(id *providers.Identity) bool {
	switch c.kind {
	case condOneOf:
		for _, g := range id.Groups {
			if slices.Contains(c.values, g) {
				return true
			}
		}
		return false
	case condAllOf:
		for _, g := range c.values {
			if !slices.Contains(id.Groups, g) {
				return false
			}
		}
		return true
	case condNoneOf:
		if id.GroupsIncomplete {
			return false
		}
		for _, g := range id.Groups {
			if slices.Contains(c.values, g) {
				return false
			}
		}
		return true
	case condEmailDomain:
		email := id.VerifiedEmail()
		at := strings.LastIndexByte(email, '@')
		if at < 0 {
			return false
		}
		domain := email[at+1:]
		for _, d := range c.domains {
			if d.Match(domain) {
				return true
			}
		}
		return false
	case condProvider:
		return slices.Contains(c.values, id.Provider)
	case condUser:
		for _, u := range c.users {
			if u.provider == id.Provider && u.subject == id.Subject {
				return true
			}
		}
		return false
	}
	return false
}
