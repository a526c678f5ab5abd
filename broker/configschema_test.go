package broker

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestConfigProblemsOneByOne: every YAML-level problem is its own Problem
// with its own line, named by its key's path and never by a Go type.
func TestConfigProblemsOneByOne(t *testing.T) {
	yaml := `listen: ":4180x"
colour: blue
session:
  lifetime: 1d
  idle_timout: 5m
  redis:
    tls: maybe
    database: many
routes: {path: /}
providers:
  - id: kc
    issuer: https://kc.example.com
    client_id: c
    client_secret: x
    scope: [openid]
    scopes: openid
`
	want := []Problem{
		{Line: 1, Message: `listen: ":4180x": the port "4180x" is not a number from 1 to 65535`},
		{Line: 2, Message: `colour: unknown key`},
		{Line: 4, Message: `session.lifetime: "1d" is not a duration (use e.g. 24h, 90m, 30s)`},
		{Line: 5, Message: `session.idle_timout: unknown key; did you mean "idle_timeout"?`},
		{Line: 7, Message: `session.redis.tls: "maybe" is not true or false`},
		{Line: 8, Message: `session.redis.database: "many" is not a whole number`},
		{Line: 9, Message: "routes: a mapping is not a list (write `- item` lines or [a, b])"},
		{Line: 15, Message: `providers[0].scope: unknown key; did you mean "scopes"?`},
		{Line: 16, Message: "providers[0].scopes: \"openid\" is not a list (write `- item` lines or [a, b])"},
	}
	_, err := ParseConfig("b.yaml", []byte(yaml), lookupIn(nil))
	cerr, ok := errors.AsType[*ConfigError](err)
	if !ok {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
	if !reflect.DeepEqual(cerr.Problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", problemLines(cerr.Problems), problemLines(want))
	}
	for _, goName := range []string{"broker.", "time.Duration", "providers.Config", "store.", "[]string"} {
		if strings.Contains(err.Error(), goName) {
			t.Errorf("a Go type name %q in:\n%s", goName, err)
		}
	}
}

func problemLines(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  line %d: %s\n", p.Line, p.Message)
	}
	return b.String()
}

// TestUnknownKeySuggestions: the nearest valid key at the same level, by
// edit distance or prefix; none when nothing is near; the valid keys of a
// small mapping listed instead.
func TestUnknownKeySuggestions(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"listen_addr: x\n", `listen_addr: unknown key; did you mean "listen"?`},
		{"Listen: x\n", `Listen: unknown key; did you mean "listen"?`},
		{"upstreams: [{path: /, ur: 'http://a'}]\n", `upstreams[0].ur: unknown key; did you mean "url"?`},
		{"routes: [{path: /, group: {one_of: [a]}}]\n", `routes[0].group: unknown key; did you mean "groups"?`},
		{"routes: [{path: /, groups: {any_of: [a]}}]\n", `routes[0].groups.any_of: unknown key; did you mean "all_of" or "one_of"?`},
		{"zzzzzz: 1\n", "zzzzzz: unknown key\n"},
		{"log: {colour: x}\n", "log.colour: unknown key (valid here: format, level, request_id_header)"},
		{"session: {redis: {tls: {ca: x}}}\n", `session.redis.tls.ca: unknown key (valid here: ca_file, insecure_skip_verify, server_name)`},
	} {
		_, err := ParseConfig("b.yaml", []byte(c.yaml), lookupIn(nil))
		if err == nil || !strings.Contains(err.Error()+"\n", c.want) {
			t.Errorf("%q: got\n%v\nwant %q", c.yaml, err, c.want)
		}
	}
}

// TestYAMLSyntaxProblems: a syntax error names its line, a tab says so.
func TestYAMLSyntaxProblems(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"providers:\n  - id: \"kc\n", "line 2: YAML syntax: found unexpected end of stream (while scanning a quoted scalar)"},
		{"session:\n\tstore: memory\n", "line 2: YAML syntax: found character that cannot start any token (while scanning for the next token); YAML is indented with spaces, not tabs"},
		{"listen: a:1\nlisten: b:2\n", `line 2: mapping key "listen" already defined at line 1`},
	} {
		_, err := ParseConfig("b.yaml", []byte(c.yaml), lookupIn(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got\n%v\nwant %q", c.yaml, err, c.want)
		}
	}
}

// TestAddressProblems: addresses the server could not bind or dial fail
// the configuration, not the start.
func TestAddressProblems(t *testing.T) {
	base := "providers: [{id: a, issuer: 'https://idp.example', client_id: c, client_secret: s}]\n"
	for _, c := range []struct{ yaml, want string }{
		{"listen: ':4180'\n", ""},
		{"listen: '127.0.0.1:0'\n", ""},
		{"listen: '[::1]:4180'\n", ""},
		{"listen: 'localhost:4180'\n", ""},
		{"listen: ':4180x'\n", `listen: ":4180x": the port "4180x" is not a number from 1 to 65535`},
		{"listen: '0.0.0.0:99999'\n", `listen: "0.0.0.0:99999": the port "99999" is not a number from 1 to 65535`},
		{"listen: '4180'\n", `listen: "4180" is not host:port`},
		{"listen: 'a b:4180'\n", `listen: "a b:4180": "a b" is not an IP address or host name`},
		{"metrics: {listen: '127.0.0.1:70000'}\n", `metrics.listen: "127.0.0.1:70000": the port "70000" is not a number from 1 to 65535`},
		{"public_url: 'https://auth.example.com:0'\n", `public_url: "https://auth.example.com:0": the port "0" is not a number from 1 to 65535`},
		{"upstream: 'http://127.0.0.1:99999'\n", `upstream: "http://127.0.0.1:99999": the port "99999"`},
		{"upstreams: [{path: /, url: 'http://127.0.0.1:65536'}]\n", `upstreams[0].url: "http://127.0.0.1:65536": the port "65536"`},
		{"session: {store: redis, redis: {address: '127.0.0.1:99999'}}\n", `session.redis.address: "127.0.0.1:99999" is not host:port`},
	} {
		_, err := ParseConfig("b.yaml", []byte(base+c.yaml), lookupIn(nil))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: got\n%v\nwant %q", c.yaml, err, c.want)
		}
	}
}

// TestSchemaKnowsEveryKey: the schema walk accepts every key the YAML
// library writes for a Config (so it reads the yaml tags as the library
// does), and the library accepts every key the walk knows.
func TestSchemaKnowsEveryKey(t *testing.T) {
	cfg := Config{Routes: []Route{{}}, Upstreams: []UpstreamConfig{{}}}
	cfg.Providers = make([]providers.Config, 1)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Load(out, &root); err != nil {
		t.Fatal(err)
	}
	s := configcheck.Walk(&root, reflect.TypeFor[Config]())
	if len(s.Problems()) > 0 {
		t.Errorf("the walk refuses keys the library wrote: %v", s.Problems())
	}
	if s.Nodes() < 100 {
		t.Errorf("the walk saw %d nodes; the marshalled config has more", s.Nodes())
	}
}

// TestSuggestValue: a value not among the listed ones gets the nearest.
func TestSuggestValue(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"providers: [{id: gh, type: gitlabb, client_id: c, client_secret: s}]\n", `providers[0].type: "gitlabb" is not one of oidc, oauth2, local, ldap, entra, github, gitlab, google, keycloak, okta; did you mean "gitlab"?`},
		{"log: {level: wran}\n", `log.level: "wran" is not one of debug, info, warn, error; did you mean "warn"?`},
		{"log: {level: loud}\n", `log.level: "loud" is not one of debug, info, warn, error` + "\n"},
	} {
		_, err := ParseConfig("b.yaml", []byte(c.yaml), lookupIn(nil))
		if err == nil || !strings.Contains(err.Error()+"\n", c.want) {
			t.Errorf("%q: got\n%v\nwant %q", c.yaml, err, c.want)
		}
	}
}
