package assertion

import (
	"net/http"
	"slices"
)

// Rule is a condition on the groups of a verified identity, with the
// semantics of the broker's access rules (docs/access.md): each list that
// is set must hold. It is the app-side check for what one route of the
// broker's configuration cannot say, such as several OR-groups, and the
// same as the Python package's groups_required.
type Rule struct {
	// OneOf requires at least one of these groups.
	OneOf []string
	// AllOf requires all of these groups.
	AllOf []string
	// NoneOf requires none of these groups, and a complete group list: when
	// the identity provider said the groups did not fit in its token
	// (Claims.GroupsIncomplete), a missing group could be one of these, so
	// the rule is not met.
	NoneOf []string
	// Each is an AND of ORs: every entry lists groups of which the user
	// needs at least one. Flask-User's roles_required("starving",
	// ["artist", "programmer"]), "starving AND (artist OR programmer)", is
	// Each: [][]string{{"starving"}, {"artist", "programmer"}}. An empty
	// entry is never met.
	Each [][]string
}

// Allows reports whether c meets every condition of r. Groups are compared
// exactly (case-sensitive), as the broker relays them. A nil c (nobody
// signed in) is never allowed.
func (r Rule) Allows(c *Claims) bool {
	if c == nil {
		return false
	}
	if len(r.OneOf) > 0 && !anyIn(c.Groups, r.OneOf) {
		return false
	}
	for _, g := range r.AllOf {
		if !slices.Contains(c.Groups, g) {
			return false
		}
	}
	if len(r.NoneOf) > 0 && (c.GroupsIncomplete || anyIn(c.Groups, r.NoneOf)) {
		return false
	}
	for _, alternatives := range r.Each {
		if !anyIn(c.Groups, alternatives) {
			return false
		}
	}
	return true
}

// anyIn reports whether have holds one of want.
func anyIn(have, want []string) bool {
	for _, g := range have {
		if slices.Contains(want, g) {
			return true
		}
	}
	return false
}

// Require returns middleware for handlers behind Middleware or Optional:
// a request without a verified identity gets 401, one whose identity r
// does not allow gets 403; the others reach next.
func Require(r Rule) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			c, ok := FromContext(req.Context())
			switch {
			case !ok:
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, "401 Unauthorized: sign in first", http.StatusUnauthorized)
			case !r.Allows(c):
				http.Error(w, "403 Forbidden: you are signed in, but not allowed to open this page", http.StatusForbidden)
			default:
				next.ServeHTTP(w, req)
			}
		})
	}
}
