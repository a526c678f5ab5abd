package configcheck

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Load decodes the YAML data strictly into out (a pointer): an unknown or
// duplicate key is a problem naming it and its line. It expands ${VAR} in
// string values with lookup, then runs validate on the decoded value (even
// after decoding problems, so one run reports everything) and places each
// of its errors, which start with the field's path, at that field's line.
// It returns every problem, by line; none when out is good.
//
// Expansion happens on parsed values, never on the raw text, so a secret
// containing YAML syntax cannot change the document's structure. Only the
// ${NAME} form is expanded; "$$" is a literal "$". An unset variable is a
// problem.
func Load(data []byte, lookup func(string) (string, bool), out any, validate func() []error) []Problem {
	var root yaml.Node
	if err := yaml.Load(data, &root, yaml.WithUniqueKeys(true)); err != nil {
		problems := YAMLProblems(err)
		if len(problems) == 0 { // still an error: never an empty list
			problems = []Problem{{Message: "YAML: " + err.Error()}}
		}
		for i, p := range problems {
			if startsWithTab(data, p.Line) {
				problems[i].Message += "; YAML is indented with spaces, not tabs"
			}
		}
		return problems
	}
	var problems []Problem
	expandNode(&root, "", lookup, &problems)
	reported := make(map[string]bool) // fields whose value is already known to be bad
	for _, p := range problems {
		field, _, _ := strings.Cut(p.Message, ": ")
		reported[field] = true
	}
	if root.Kind != 0 {
		// The schema walk reports unknown keys, each with its line and the
		// key probably meant, and gives decoding errors their key's path.
		s := Walk(&root, reflect.TypeOf(out).Elem())
		problems = append(problems, s.Problems()...)
		if err := root.Load(out, yaml.WithKnownFields()); err != nil {
			for _, p := range s.DecodeProblems(err) {
				problems = append(problems, p)
				field, _, _ := strings.Cut(p.Message, ": ")
				reported[field] = true
			}
		}
	}
	for _, e := range validate() {
		msg := SuggestValue(e.Error())
		field, _, _ := strings.Cut(msg, ": ")
		if !reported[field] {
			problems = append(problems, Problem{Line: NodeLine(&root, field), Message: msg})
		}
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
	return problems
}

// startsWithTab reports whether line n (from 1) of data is indented with a
// tab.
func startsWithTab(data []byte, n int) bool {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	return strings.HasPrefix(strings.TrimLeft(lines[n-1], " "), "\t")
}

var varRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandNode replaces ${VAR} in every scalar value (not in keys).
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), problems *[]Problem) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, problems)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], JoinPath(path, n.Content[i].Value), lookup, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = varRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			v, ok := lookup(name)
			if !ok {
				*problems = append(*problems, Problem{Line: n.Line,
					Message: fmt.Sprintf("%s: environment variable %s is not set", path, name)})
			}
			return v
		})
		// A plain scalar is resolved again from its expanded text, so that
		// "x_for: ${HOPS}" can be a number; a quoted one stays a string.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
}
