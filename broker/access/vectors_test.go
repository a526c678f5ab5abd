package access

import (
	"github.com/oidc-broker/oidc-broker/internal/testsupport/rulevectors"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

// TestGroupRuleVectors: the broker's group conditions decide the shared
// cases of assertion/testdata/group-rules.json as the app-side checks do
// (assertion.Rule, the Python package's GroupRule). The AND-of-ORs cases
// ("each") have no form in the broker's rules and are left out.
func TestGroupRuleVectors(t *testing.T) {
	checked := 0
	for i, c := range rulevectors.Load(t) {
		if c.Rule.Each != nil {
			continue
		}
		checked++
		r := compileRule("vector", Rule{Groups: GroupCondition{OneOf: c.Rule.OneOf, AllOf: c.Rule.AllOf, NoneOf: c.Rule.NoneOf}})
		id := providers.Identity{Provider: "kc", Subject: "1", Groups: c.Groups, GroupsIncomplete: c.Incomplete}
		d, _ := r.check(&id, false)
		if got := d == Allowed; got != c.Allowed {
			t.Errorf("case %d: %+v with groups %q (incomplete %v): decision %v, want allowed=%v", i, c.Rule, c.Groups, c.Incomplete, d, c.Allowed)
		}
	}
	if checked < 10 {
		t.Errorf("only %d cases checked", checked)
	}
}
