package access

import (
	"fmt"
	"strings"
)

// Problems checks routes and the default rule; each message starts with
// its field's YAML path ("routes[2].host: ..."). known is the set of
// configured provider ids; nil accepts every id.
func Problems(routes []Route, dflt Rule, known map[string]bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, rt := range routes {
		f := fmt.Sprintf("routes[%d]", i)
		if err := validPattern(rt.Path); err != nil {
			add(f+".path", "%q %v", rt.Path, err)
		}
		for j, m := range rt.Methods {
			if m == "" || !upperToken(m) {
				add(fmt.Sprintf("%s.methods[%d]", f, j), "%q must be an upper-case method name such as GET", m)
			}
		}
		if rt.Host != "" {
			if _, err := ParseHostPattern(rt.Host); err != nil {
				add(f+".host", "%q %v", rt.Host, err)
			}
		}
		errs = append(errs, rt.AccessRule.Problems(f+".", known)...)
	}
	return append(errs, dflt.Problems("default.", known)...)
}

// Problems checks one rule; each message starts with prefix and the
// field's YAML name.
func (a Rule) Problems(prefix string, known map[string]bool) []error {
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
		if _, err := ParseHostPattern(d); err != nil {
			add(fmt.Sprintf("email_domains[%d]", j), "%q must be a domain (example.com) or .domain for its subdomains too", d)
		}
	}
	errs = append(errs, a.StepUp.problems(prefix, a.Public)...) // stepup.go
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
