package broker

import (
	"fmt"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/redirect"
)

// The access rules' types, which the configuration and the embedding API
// name; the rules and their checks are package access.
type (
	// Route is an access rule for the requests it matches (access.Route).
	Route = access.Route
	// AccessRule says who may make a request (access.Rule).
	AccessRule = access.Rule
	// GroupCondition are conditions on the user's groups
	// (access.GroupCondition).
	GroupCondition = access.GroupCondition
)

// accessProblems validates routes, default and redirect_hosts (called from
// Config.validate); each message starts with its field's YAML path.
func (c Config) accessProblems() []error {
	errs := access.Problems(c.Routes, c.Default, providerIDs(c.Providers)) // nil providers: every id
	return append(errs, redirect.Problems(c.RedirectHosts)...)
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
