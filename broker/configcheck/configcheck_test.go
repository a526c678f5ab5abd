package configcheck

import (
	"net/url"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
)

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"scope", "scopes", 1}, {"kitten", "sitting", 3}, {"idle_timout", "idle_timeout", 1}, {"prot", "port", 1}, {"ca", "abc", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// flexible is a config type with its own UnmarshalYAML that takes a key its
// struct does not have ("addr" for address), as a field added later might.
type flexible struct {
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
}

func (f *flexible) UnmarshalYAML(n *yaml.Node) error {
	var m struct {
		Address string `yaml:"address"`
		Addr    string `yaml:"addr"`
		Port    int    `yaml:"port"`
	}
	if err := n.Load(&m, yaml.WithKnownFields()); err != nil {
		return err
	}
	f.Address, f.Port = m.Address+m.Addr, m.Port
	return nil
}

// TestSchemaBelowCustomUnmarshalers: below a type with its own
// UnmarshalYAML an unknown key is reported only when the library refuses
// it too, then with its path and the nearest key.
func TestSchemaBelowCustomUnmarshalers(t *testing.T) {
	type top struct {
		Flex flexible `yaml:"flex"`
		Any  any      `yaml:"any"`
	}
	problems := func(doc string) []Problem {
		var root yaml.Node
		if err := yaml.Load([]byte(doc), &root); err != nil {
			t.Fatal(err)
		}
		s := Walk(&root, reflect.TypeFor[top]())
		out := s.Problems()
		var v top
		if err := root.Load(&v, yaml.WithKnownFields()); err != nil {
			out = append(out, s.DecodeProblems(err)...)
		}
		return out
	}
	if got := problems("flex:\n  addr: a\n  port: 1\n"); len(got) != 0 {
		t.Errorf("a key the type takes was refused: %v", got)
	}
	if got, want := problems("flex: {prot: 1}\n"), []Problem{{1, `flex.prot: unknown key; did you mean "port"?`}}; !reflect.DeepEqual(got, want) {
		t.Errorf("the mapping's first key: got %v, want %v", got, want)
	}
	want := []Problem{{3, `flex.prot: unknown key; did you mean "port"?`}, {4, `flex.port: "x" is not a whole number`}}
	if got := problems("flex:\n  addr: a\n  prot: 1\n  port: x\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLineOf(t *testing.T) {
	doc := []byte("listen: x\nselection:\n  colors:\n    text: '#ccc'\nproviders:\n  - id: a\n  - id: b\n    issuer: c\n")
	for path, want := range map[string]int{
		"listen": 1, "selection.colors.text": 4, "selection.colors.primary": 3, "providers[1].issuer": 8,
		"providers": 5, "routes": 0, "trusted_proxies.from": 0,
	} {
		if got := LineOf(doc, path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
	if got := LineOf([]byte("a: [\n"), "a"); got != 0 {
		t.Errorf("LineOf of a broken document = %d", got)
	}
}

// TestWalkTellsProblemsByPath: unknown keys with the nearest key or the
// valid ones, and typed-value errors naming the key, in the file's terms.
func TestWalkTellsProblemsByPath(t *testing.T) {
	type item struct {
		Name  string        `yaml:"name"`
		Every time.Duration `yaml:"every"`
	}
	type top struct {
		Listen string          `yaml:"listen"`
		Items  []item          `yaml:"items"`
		Tags   map[string]bool `yaml:"tags"`
		Count  int             `yaml:"count"`
	}
	doc := "listn: x\nitems:\n  - name: a\n    every: 1d\n  - nme: b\ntags: {a: maybe}\ncount: many\n"
	var root yaml.Node
	if err := yaml.Load([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	s := Walk(&root, reflect.TypeFor[top]())
	got := s.Problems()
	var v top
	if err := root.Load(&v, yaml.WithKnownFields()); err != nil {
		got = append(got, s.DecodeProblems(err)...)
	}
	want := []Problem{
		{1, `listn: unknown key; did you mean "listen"?`},
		{5, `items[1].nme: unknown key; did you mean "name"?`},
		{4, `items[0].every: "1d" is not a duration (use e.g. 24h, 90m, 30s)`},
		{6, `tags.a: "maybe" is not true or false`},
		{7, `count: "many" is not a whole number`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestSuggestValue(t *testing.T) {
	for msg, want := range map[string]string{
		`log.level: "wran" is not one of debug, info, warn, error`: `log.level: "wran" is not one of debug, info, warn, error; did you mean "warn"?`,
		`log.level: "loud" is not one of debug, info, warn, error`: `log.level: "loud" is not one of debug, info, warn, error`,
		`type: "gitlub" is not one of github, gitlab, google`:      `type: "gitlub" is not one of github, gitlab, google; did you mean "github" or "gitlab"?`,
		`listen: something else`:                                   `listen: something else`,
	} {
		if got := SuggestValue(msg); got != want {
			t.Errorf("SuggestValue(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestYAMLProblems: a syntax error is one problem with its line.
func TestYAMLProblems(t *testing.T) {
	var root yaml.Node
	err := yaml.Load([]byte("a: \"x\n"), &root)
	if err == nil {
		t.Fatal("a syntax error was taken")
	}
	if got := YAMLProblems(err); len(got) != 1 || got[0].Line != 1 || got[0].Message[:12] != "YAML syntax:" {
		t.Errorf("a syntax error: %v", got)
	}
}

func TestNodeLine(t *testing.T) {
	var root yaml.Node
	if err := yaml.Load([]byte("listen: x\nproviders:\n  - id: a\n  - id: b\n    issuer: c\n"), &root); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"listen": 1, "providers[1].issuer": 5, "providers[1].scopes": 4, "routes": 1} {
		if got := NodeLine(&root, path); got != want {
			t.Errorf("NodeLine(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for addr, want := range map[string]string{
		":4180": "", "127.0.0.1:0": "", "[::1]:4180": "", "localhost:4180": "",
		":4180x":        `":4180x": the port "4180x" is not a number from 1 to 65535`,
		"0.0.0.0:99999": `"0.0.0.0:99999": the port "99999" is not a number from 1 to 65535`,
		":080":          `":080": the port "080" is not a number from 1 to 65535`,
		"4180":          `"4180" is not host:port (such as 127.0.0.1:4180 or :4180)`,
		"a b:4180":      `"a b:4180": "a b" is not an IP address or host name`,
	} {
		if got := ListenProblem(addr); got != want {
			t.Errorf("ListenProblem(%q) = %q, want %q", addr, got, want)
		}
	}
	for raw, want := range map[string]string{
		"https://a.example": "", "https://a.example:443": "", "http://a:65535": "",
		"http://a:0":     `the port "0" is not a number from 1 to 65535`,
		"http://a:65536": `the port "65536" is not a number from 1 to 65535`,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := URLPortProblem(u); got != want {
			t.Errorf("URLPortProblem(%q) = %q, want %q", raw, got, want)
		}
	}
}
