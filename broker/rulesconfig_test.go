package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestAccessConfigProblems(t *testing.T) {
	yaml := `providers:
  - id: corp
    issuer: https://idp.example.com
    client_id: c
    client_secret: s
routes:
  - path: static/
    public: true
  - path: /a/../b
  - path: /user/{id/x
    methods: [get, POST, ""]
    host: "evil.example.com/x"
  - path: /x
    public: true
    groups: {one_of: [admins]}
  - path: /y
    groups: {all_of: [""], none_of: [ok, ""]}
    email_domains: ["@example.com", ".example.com"]
    providers: [corp, nope]
    users: ["corp:1", "nope:2", "justsub"]
  - path: "/a{$}"
  - path: /q?x
  - path: ""
default:
  providers: [gone]
redirect_hosts: [app.example.com, ".example.com:8443", "evil.com/x", "a.com:0", "*.example.com"]
`
	_, err := ParseConfig("broker.yaml", []byte(yaml), lookupIn(nil))
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		`line 7: routes[0].path: "static/" must start with /`,
		`line 9: routes[1].path: "/a/../b" must not contain "." or ".." segments`,
		`line 10: routes[2].path: "/user/{id/x" segment "{id": a wildcard is a whole segment`,
		`line 11: routes[2].methods[0]: "get" must be an upper-case method name`,
		`line 11: routes[2].methods[2]: "" must be an upper-case method name`,
		`line 12: routes[2].host: "evil.example.com/x" must be a host name or .domain`,
		`line 14: routes[3].public: cannot be combined with conditions`,
		`line 17: routes[4].groups.all_of[0]: must not be empty`,
		`line 17: routes[4].groups.none_of[1]: must not be empty`,
		`line 18: routes[4].email_domains[0]: "@example.com" must be a domain`,
		`line 19: routes[4].providers[1]: "nope" is not a configured provider`,
		`line 20: routes[4].users[1]: "nope" is not a configured provider`,
		`line 20: routes[4].users[2]: "justsub" must be <provider>:<sub>`,
		`line 21: routes[5].path: "/a{$}" segment "a{$}"`,
		`line 22: routes[6].path: "/q?x" must be a plain path`,
		`line 23: routes[7].path: "" is required`,
		`line 25: default.providers[0]: "gone" is not a configured provider`,
		`line 26: redirect_hosts[2]: "evil.com/x" must be a host name or .domain, optionally with :port`,
		`line 26: redirect_hosts[3]: "a.com:0" must be`,
		`line 26: redirect_hosts[4]: "*.example.com" must be`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q", w)
		}
	}
	if n := strings.Count(got, "\n"); n != len(want) {
		t.Errorf("%d problems, want %d:\n%s", n, len(want), got)
	}

	ok := `providers:
  - id: corp
    issuer: https://idp.example.com
    client_id: c
    client_secret: s
routes:
  - path: /static/
    public: true
  - path: /user/{id}/public
    public: true
  - path: /{$}
    public: true
  - path: /admin/
    methods: [GET, POST]
    host: .example.com
    groups: {one_of: [admins], all_of: [staff], none_of: [contractors]}
    email_domains: [example.com, .example.org]
    providers: [corp]
    users: ["corp:1"]
default:
  groups: {one_of: [staff]}
redirect_hosts: [app.example.com, ".example.com", "app.example.com:8443"]
`
	cfg, err := ParseConfig("broker.yaml", []byte(ok), lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 4 || !cfg.Routes[0].Public || cfg.Routes[3].Groups.AllOf[0] != "staff" || cfg.Default.Groups.OneOf[0] != "staff" ||
		len(cfg.RedirectHosts) != 3 {
		t.Errorf("decoded %+v", cfg)
	}
}

func TestAccessWarnings(t *testing.T) {
	c := Config{Routes: []Route{{Path: "/"}, {Path: "/x"}}}
	w := strings.Join(c.accessWarnings(), "\n")
	if !strings.Contains(w, "routes[0]: matches every request") || !strings.Contains(w, "trusted_proxies.from is empty") {
		t.Errorf("warnings: %s", w)
	}
	c.TrustedProxies.From = []string{"127.0.0.1"}
	c.Routes = c.Routes[1:]
	if w := c.accessWarnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}
