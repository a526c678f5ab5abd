package broker

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
)

// ConfigError lists every problem found in a configuration file, each with
// the line it was found at when known.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Problem is one configuration problem: its line (0 when unknown) and its
// message, which starts with the field's YAML path.
type Problem = configcheck.Problem

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// LoadConfig reads, expands, strictly decodes and validates a YAML file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("broker: %w", err)
	}
	return ParseConfig(path, data, os.LookupEnv)
}

// ParseConfig decodes data strictly (an unknown or duplicate key is an
// error naming it and its line), expands ${VAR} in string values with
// lookup, and validates the result. name labels the errors.
//
// Expansion happens on parsed values, never on the raw text, so a secret
// containing YAML syntax cannot change the document's structure. Only the
// ${NAME} form is expanded; "$$" is a literal "$". An unset variable is an
// error.
func ParseConfig(name string, data []byte, lookup func(string) (string, bool)) (Config, error) {
	cerr := &ConfigError{File: name}
	var root yaml.Node
	if err := yaml.Load(data, &root, yaml.WithUniqueKeys(true)); err != nil {
		cerr.Problems = configcheck.YAMLProblems(err)
		for i, p := range cerr.Problems {
			if startsWithTab(data, p.Line) {
				cerr.Problems[i].Message += "; YAML is indented with spaces, not tabs"
			}
		}
		return Config{}, cerr
	}
	expandNode(&root, "", lookup, cerr)
	reported := make(map[string]bool) // fields whose value is already known to be bad
	for _, p := range cerr.Problems {
		field, _, _ := strings.Cut(p.Message, ": ")
		reported[field] = true
	}
	var cfg Config
	if root.Kind != 0 {
		// The schema walk reports unknown keys, each with its line and the
		// key probably meant, and gives decoding errors their key's path.
		s := configcheck.Walk(&root, reflect.TypeFor[Config]())
		cerr.Problems = append(cerr.Problems, s.Problems()...)
		if err := root.Load(&cfg, yaml.WithKnownFields()); err != nil {
			for _, p := range s.DecodeProblems(err) {
				cerr.Problems = append(cerr.Problems, p)
				field, _, _ := strings.Cut(p.Message, ": ")
				reported[field] = true
			}
		}
	}
	// Validate even after decoding problems, so one run reports everything.
	for _, e := range providers.Flatten(cfg.Validate()) {
		msg := configcheck.SuggestValue(e.Error())
		field, _, _ := strings.Cut(msg, ": ")
		if !reported[field] {
			cerr.Problems = append(cerr.Problems, Problem{Line: configcheck.NodeLine(&root, field), Message: msg})
		}
	}
	if len(cerr.Problems) > 0 {
		sort.SliceStable(cerr.Problems, func(i, j int) bool { return cerr.Problems[i].Line < cerr.Problems[j].Line })
		return Config{}, cerr
	}
	return cfg, nil
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
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), cerr *ConfigError) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, cerr)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], configcheck.JoinPath(path, n.Content[i].Value), lookup, cerr)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, cerr)
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
				cerr.Problems = append(cerr.Problems, Problem{Line: n.Line,
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
