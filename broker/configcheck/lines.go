package configcheck

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Problems and lines: YAML errors split one per line, and the line of a
// key path such as "providers[1].issuer".

var lineRE = regexp.MustCompile(`line (\d+): `)

// YAMLProblems splits an error of the YAML library into one problem per
// line it names; a syntax error is one problem, at the line where the
// unfinished construct began.
func YAMLProblems(err error) []Problem {
	if le, ok := errors.AsType[*yaml.LoadError](err); ok {
		// A syntax error: the scanner or parser stops at the first.
		msg, line := le.Message, le.Mark.Line
		if le.ContextMsg != "" {
			msg += " (" + le.ContextMsg + ")"
			if le.ContextMark.Line > 0 {
				line = le.ContextMark.Line // where the unfinished construct began
			}
		}
		return []Problem{{Line: line, Message: "YAML syntax: " + msg}}
	}
	var out []Problem
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "yaml:"))
		if l == "" || strings.HasSuffix(l, "errors:") {
			continue
		}
		p := Problem{Message: l}
		if m := lineRE.FindStringSubmatchIndex(l); m != nil {
			p.Line, _ = strconv.Atoi(l[m[2]:m[3]])
			p.Message = strings.TrimSpace(l[:m[0]] + l[m[1]:])
			p.Message = strings.TrimPrefix(p.Message, "construct errors: ")
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		out = append(out, Problem{Message: err.Error()})
	}
	return out
}

// JoinPath is the path of key in the mapping at path ("" at the top).
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var indexRE = regexp.MustCompile(`^([^\[]*)\[(\d+)\]$`)

// LineOf finds the line of a dotted YAML path such as "providers[1].issuer"
// (as problems and warnings start) in the YAML document data: the line of
// the deepest key (or list item) it reaches, 0 when data has not even the
// path's first key.
func LineOf(data []byte, path string) int {
	var root yaml.Node
	if err := yaml.Load(data, &root); err != nil || len(root.Content) == 0 {
		return 0
	}
	n, line := root.Content[0], 0
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if m := indexRE.FindStringSubmatch(part); m != nil {
			key = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		k, v := mapEntry(n, key)
		if k == nil {
			return line
		}
		n, line = v, k.Line
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// mapEntry is the key and value nodes of key in mapping n (nils when
// absent).
func mapEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// NodeLine finds the line of a dotted YAML path such as
// "providers[1].issuer" in the loaded document root: the line of the
// deepest node it could reach.
func NodeLine(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if m := indexRE.FindStringSubmatch(part); m != nil {
			key = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		if key != "" {
			next := mapValue(n, key)
			if next == nil {
				return line
			}
			n, line = next, next.Line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
