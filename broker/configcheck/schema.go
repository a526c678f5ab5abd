// Package configcheck checks a YAML configuration file against the Go type
// it decodes into, and tells every problem in the file's terms: one problem
// per line, named by its key's path (providers[0].scopes), with the key or
// value probably meant, never a Go type name. It knows nothing of the
// broker's configuration itself: the schema is read from the types' yaml
// tags, so a field added to any config struct is covered without a change
// here. It also holds the checks of network addresses the configuration
// names (ListenProblem, URLPortProblem), and the loading of a file that
// applies all this: strict decoding, ${VAR} expansion, validation (Load).
package configcheck

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"
)

// The schema, read from the Go types: the YAML tree is walked beside the
// type it decodes into, so every mapping's keys are
// checked against the yaml tags of its struct (an unknown key gets its path,
// its line and the nearest valid key), and every decoding error of the YAML
// library is told in the file's terms (the key's path, the value, what was
// expected) instead of Go's. A field added to any config struct is covered
// without a change here.

// nodeAt is what the schema walk knows of one YAML node: its path in the
// file and the Go type it decodes into (nil when unknown).
type nodeAt struct {
	path string
	typ  reflect.Type
	node *yaml.Node
}

// Problem is one problem in a configuration file.
type Problem struct {
	Line    int    // 0 when unknown
	Message string // starts with the field's YAML path
}

// Schema is the result of walking a document beside its type: the unknown
// keys it found (Problems), and what DecodeProblems needs to tell the YAML
// library's decoding errors by key path.
type Schema struct {
	at       map[[2]int]nodeAt // values, by node position (line, column)
	keys     map[[2]int]string // the paths of keys, by position (a mapping starts where its first key does)
	problems []Problem         // unknown keys
	unknown  map[[2]int]bool   // positions of the unknown keys reported
	// tentative are the unknown keys found below a type with its own
	// UnmarshalYAML, which may take keys its struct does not have: each
	// is reported only when the YAML library refuses that key too.
	tentative map[[2]int]string
	custom    int // >0 while below such a type
	// fields caches yamlFields by struct type: a list of 10,000
	// providers is 10,000 mappings of one type, and reflecting over its
	// fields each time was a fifth of the start-up (issue 18).
	fields map[reflect.Type]map[string]reflect.Type
}

// Walk walks root (a document) beside t, the type it decodes into.
func Walk(root *yaml.Node, t reflect.Type) *Schema {
	s := &Schema{at: map[[2]int]nodeAt{}, keys: map[[2]int]string{}, unknown: map[[2]int]bool{}, tentative: map[[2]int]string{},
		fields: map[reflect.Type]map[string]reflect.Type{}}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	s.walk(n, "", t)
	return s
}

// Problems are the unknown keys the walk found, each with its line, its
// path and the key probably meant.
func (s *Schema) Problems() []Problem { return s.problems }

// Nodes is how many nodes the walk saw (tests check that it went deep).
func (s *Schema) Nodes() int { return len(s.at) }

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (s *Schema) walk(n *yaml.Node, path string, t reflect.Type) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s.at[[2]int{n.Line, n.Column}] = nodeAt{path: path, typ: t, node: n}
	if t == nil {
		s.walkUntyped(n, path)
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		s.custom++
		defer func() { s.custom-- }()
	}
	switch n.Kind {
	case yaml.MappingNode:
		switch {
		case t.Kind() == reflect.Struct:
			// A type with its own UnmarshalYAML that is given a mapping
			// (RedisTLS) is walked as its struct too (see tentative).
			s.walkStruct(n, path, t)
		case t.Kind() == reflect.Map:
			for i := 0; i+1 < len(n.Content); i += 2 {
				s.walk(n.Content[i+1], s.key(n.Content[i], path), t.Elem())
			}
		default:
			s.walkUntyped(n, path)
		}
	case yaml.SequenceNode:
		var elem reflect.Type
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		}
		for i, c := range n.Content {
			s.walk(c, fmt.Sprintf("%s[%d]", path, i), elem)
		}
	}
}

// walkUntyped records the paths below a node whose type is unknown, so that
// a decoding error there still names its key.
func (s *Schema) walkUntyped(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			s.walk(n.Content[i+1], s.key(n.Content[i], path), nil)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			s.walk(c, fmt.Sprintf("%s[%d]", path, i), nil)
		}
	}
}

// key records key node k of a mapping at path and returns its own path.
func (s *Schema) key(k *yaml.Node, path string) string {
	p := JoinPath(path, k.Value)
	s.keys[[2]int{k.Line, k.Column}] = p
	return p
}

// walkStruct checks a mapping's keys against struct t's fields.
func (s *Schema) walkStruct(n *yaml.Node, path string, t reflect.Type) {
	fields, ok := s.fields[t]
	if !ok {
		fields = yamlFields(t)
		s.fields[t] = fields
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" { // a merge key: its mapping's keys are checked where they land
			s.walk(v, path, t)
			continue
		}
		kpath := s.key(k, path)
		ft, ok := fields[k.Value]
		if !ok {
			pos, msg := [2]int{k.Line, k.Column}, unknownKey(kpath, k.Value, fields)
			if s.custom > 0 {
				s.tentative[pos] = msg
			} else {
				s.unknown[pos] = true
				s.problems = append(s.problems, Problem{Line: k.Line, Message: msg})
			}
			s.walk(v, kpath, nil)
			continue
		}
		s.walk(v, kpath, ft)
	}
}

// yamlFields maps the YAML keys of struct t to their types, as the YAML
// library reads them: the yaml tag's name, else the field's name in lower
// case; "-" skipped; ",inline" structs' keys included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, flags, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(flags, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// unknownKey says that key (at path) is not one of fields, and which
// valid key was probably meant.
func unknownKey(path, key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	if hint := didYouMean(key, names); hint != "" {
		return path + ": unknown key;" + hint
	}
	if len(names) <= 8 {
		slices.Sort(names)
		return fmt.Sprintf("%s: unknown key (valid here: %s)", path, strings.Join(names, ", "))
	}
	return path + ": unknown key"
}

// didYouMean names the valid names nearest to key by edit distance, when
// they are close enough to be a likely typo (all of them on a tie, as
// "github" and "gitlab" for "gitlub"): ` did you mean "x"?`, or "" when
// none is near.
func didYouMean(key string, names []string) string {
	lk := strings.ToLower(key)
	var best []string
	bestD := -1
	for _, k := range names {
		switch d := editDistance(lk, k); {
		case bestD < 0 || d < bestD:
			best, bestD = []string{k}, d
		case d == bestD:
			best = append(best, k)
		}
	}
	if bestD < 0 || bestD > max(1, min(3, len(key)/3)) {
		// Else the valid names the typed one starts with, or that start
		// with it ("listen_addr" for listen, "redirect" for redirect_hosts).
		best = nil
		for _, k := range names {
			if min(len(k), len(lk)) >= 4 && (strings.HasPrefix(lk, k) || strings.HasPrefix(k, lk)) {
				best = append(best, k)
			}
		}
	}
	if len(best) == 0 || len(best) > 3 || slices.Contains(best, key) {
		return ""
	}
	slices.Sort(best)
	quoted := make([]string, len(best))
	for i, b := range best {
		quoted[i] = strconv.Quote(b)
	}
	return " did you mean " + strings.Join(quoted, " or ") + "?"
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours, each
// counting one (bytes: keys are ASCII).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var oneOfRE = regexp.MustCompile(`^(.*): "([^"]*)" is not one of ([A-Za-z0-9_, -]+)$`)

// SuggestValue adds the nearest valid value to a validation message of the
// form `field: "x" is not one of a, b, c`, whichever package wrote it.
func SuggestValue(msg string) string {
	m := oneOfRE.FindStringSubmatch(msg)
	if m == nil || m[2] == "" {
		return msg
	}
	if hint := didYouMean(m[2], strings.Split(m[3], ", ")); hint != "" {
		return msg + ";" + hint
	}
	return msg
}

var (
	notFoundRE  = regexp.MustCompile(`^field (\S+) not found in type `)
	constructRE = regexp.MustCompile(`^cannot construct .* into (\S+)$`)
	goTypeRE    = regexp.MustCompile(` into \S+`)
)

// DecodeProblems tells the YAML library's decoding errors (from loading
// the walked document into its type) in the file's terms. Unknown keys the
// walk already reported are left out.
func (s *Schema) DecodeProblems(err error) []Problem {
	lerrs, ok := errors.AsType[*yaml.LoadErrors](err)
	if !ok {
		return YAMLProblems(err)
	}
	var out []Problem
	for _, le := range lerrs.Errors {
		pos := [2]int{le.Mark.Line, le.Mark.Column}
		if s.unknown[pos] {
			continue
		}
		out = append(out, Problem{Line: le.Mark.Line, Message: s.explain(le, pos)})
	}
	return out
}

// explain rewrites one decoding error: its key's path first, then what is
// wrong with the value, with no Go type name.
func (s *Schema) explain(le *yaml.LoadError, pos [2]int) string {
	at, known := s.at[pos]
	msg := le.Message
	if m := notFoundRE.FindStringSubmatch(msg); m != nil {
		if t, ok := s.tentative[pos]; ok {
			return t
		}
		if p, ok := s.keys[pos]; ok { // a key below a value whose type the walk did not know
			return p + ": unknown key"
		}
		return m[1] + ": unknown key"
	}
	if !known {
		return goTypeRE.ReplaceAllString(msg, "")
	}
	if m := constructRE.FindStringSubmatch(msg); m != nil {
		return at.path + ": " + expected(at.node, kindOf(m[1], at.typ))
	}
	return at.path + ": " + goTypeRE.ReplaceAllString(msg, "")
}

// Kinds of value the configuration's fields take.
const (
	kindOther = iota
	kindDuration
	kindBool
	kindInt
	kindUint
	kindFloat
	kindString
	kindList
	kindMapping
)

// kindOf is the kind of value the YAML library failed to construct: from
// the Go type it names (goType), which is what a field with its own
// UnmarshalYAML decodes into, else from the field's type t.
func kindOf(goType string, t reflect.Type) int {
	switch {
	case goType == "time.Duration":
		return kindDuration
	case goType == "bool":
		return kindBool
	case goType == "string":
		return kindString
	case strings.HasPrefix(goType, "uint"):
		return kindUint
	case strings.HasPrefix(goType, "int"):
		return kindInt
	case strings.HasPrefix(goType, "float"):
		return kindFloat
	case strings.HasPrefix(goType, "[]"):
		return kindList
	case strings.HasPrefix(goType, "map["):
		return kindMapping
	}
	if t == nil {
		return kindOther
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return kindDuration
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return kindInt
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return kindUint
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return kindFloat
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return kindList
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return kindMapping
	}
	return kindOther
}

// expected says what a value of the kind must look like, given node n that
// is not one.
func expected(n *yaml.Node, kind int) string {
	got := fmt.Sprintf("%q is", n.Value)
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping is"
	case yaml.SequenceNode:
		got = "a list is"
	}
	switch kind {
	case kindDuration:
		return got + " not a duration (use e.g. 24h, 90m, 30s)"
	case kindBool:
		return got + " not true or false"
	case kindInt:
		return got + " not a whole number"
	case kindUint:
		return got + " not a whole number of 0 or more"
	case kindFloat:
		return got + " not a number"
	case kindString:
		return got + " not a single value (quote it, or write one value)"
	case kindList:
		return got + " not a list (write `- item` lines or [a, b])"
	case kindMapping:
		return got + " not a mapping (write `key: value` lines below it)"
	}
	return got + " not a valid value here"
}
