// Package rulevectors reads the group-rule cases of
// assertion/testdata/group-rules.json, which the broker's compiled rules,
// Go's assertion.Rule and the Python package's GroupRule must all decide
// alike.
package rulevectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Case is one rule, the groups it is asked about, and the answer.
type Case struct {
	Rule struct {
		OneOf  []string   `json:"one_of"`
		AllOf  []string   `json:"all_of"`
		NoneOf []string   `json:"none_of"`
		Each   [][]string `json:"each"` // AND of ORs: no form in the broker's rules
	} `json:"rule"`
	Groups     []string `json:"groups"`
	Incomplete bool     `json:"incomplete"`
	Allowed    bool     `json:"allowed"`
}

// Load returns the cases, failing tb when the file cannot be read.
func Load(tb testing.TB) []Case {
	tb.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "..", "assertion", "testdata", "group-rules.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var v struct {
		Cases []Case `json:"cases"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	return v.Cases
}
