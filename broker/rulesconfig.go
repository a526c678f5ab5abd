package broker

import (
	"fmt"
	"strings"
)

// The checks of the access rules' configuration (routes, default,
// redirect_hosts), run by Config.validate; the rules themselves are in
// rules.go.

// accessProblems validates routes, default and redirect_hosts (called from
// Config.validate); each message starts with its field's YAML path.
func (c Config) accessProblems() []error {
	known := providerIDs(c.Providers) // nil when the configuration has none
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, rt := range c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		if err := validPattern(rt.Path); err != nil {
			add(f+".path", "%q %v", rt.Path, err)
		}
		for j, m := range rt.Methods {
			if m == "" || !upperToken(m) {
				add(fmt.Sprintf("%s.methods[%d]", f, j), "%q must be an upper-case method name such as GET", m)
			}
		}
		if rt.Host != "" && !validDomainPattern(rt.Host) {
			add(f+".host", "%q must be a host name or .domain", rt.Host)
		}
		errs = append(errs, ruleProblems(f+".", rt.AccessRule, known)...)
	}
	errs = append(errs, ruleProblems("default.", c.Default, known)...)
	return append(errs, c.redirectHostProblems()...)
}

func ruleProblems(prefix string, a AccessRule, known map[string]bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", prefix, field, fmt.Sprintf(format, args...)))
	}
	g := a.Groups
	if a.Public && len(g.OneOf)+len(g.AllOf)+len(g.NoneOf)+len(a.EmailDomains)+len(a.Providers)+len(a.Users) > 0 {
		add("public", "cannot be combined with conditions (groups, email_domains, providers, users)")
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"groups.one_of", g.OneOf}, {"groups.all_of", g.AllOf}, {"groups.none_of", g.NoneOf}} {
		for j, v := range l.list {
			if v == "" {
				add(fmt.Sprintf("%s[%d]", l.key, j), "must not be empty")
			}
		}
	}
	for j, d := range a.EmailDomains {
		if !validDomainPattern(d) {
			add(fmt.Sprintf("email_domains[%d]", j), "%q must be a domain (example.com) or .domain for its subdomains too", d)
		}
	}
	provider := func(field, id string) {
		if known != nil && !known[id] {
			add(field, "%q is not a configured provider", id)
		}
	}
	for j, p := range a.Providers {
		provider(fmt.Sprintf("providers[%d]", j), p)
	}
	for j, u := range a.Users {
		f := fmt.Sprintf("users[%d]", j)
		if p, sub, ok := strings.Cut(u, ":"); !ok || p == "" || sub == "" {
			add(f, "%q must be <provider>:<sub>, as in X-Auth-Request-User", u)
		} else {
			provider(f, p)
		}
	}
	return errs
}

// validDomainPattern accepts a host name or ".domain": letters, digits, '-'
// and dots between non-empty labels.
func validDomainPattern(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// accessWarnings lists rules that are valid but probably not what was meant.
func (c Config) accessWarnings() []string {
	var w []string
	for i, rt := range c.Routes {
		if rt.Path == "/" && rt.Host == "" && len(rt.Methods) == 0 && i+1 < len(c.Routes) {
			w = append(w, fmt.Sprintf("routes[%d]: matches every request, so the routes after it never apply", i))
			break
		}
	}
	if len(c.Routes) > 0 && len(c.TrustedProxies.From) == 0 && c.Upstream == "" && len(c.Upstreams) == 0 {
		w = append(w, "routes: trusted_proxies.from is empty, so /oauth2/auth ignores the request a proxy describes "+
			"(X-Original-URI, X-Forwarded-Uri/-Method/-Host) and applies every route that may match; see docs/access.md")
	}
	return w
}
