package broker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const validConfig = `
listen: 127.0.0.1:4180
public_url: https://auth.example.com
session:
  lifetime: 12h
trusted_proxies:
  x_for: ${HOPS}
providers:
  - id: google
    name: Google
    issuer: https://accounts.google.com
    client_id: abc
    client_secret: ${GOOGLE_SECRET}
  - id: kc
    issuer: https://kc.example.com/realms/main
    client_id: broker
    token_endpoint_auth_method: none
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("broker.yaml", []byte(validConfig), lookupIn(map[string]string{"GOOGLE_SECRET": "s3cr#t: {x}", "HOPS": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Providers[0].ClientSecret != "s3cr#t: {x}" {
		t.Errorf("secret %q: expansion must not reinterpret YAML", cfg.Providers[0].ClientSecret)
	}
	if cfg.TrustedProxies.XFor != 1 || cfg.Session.Lifetime != 12*time.Hour {
		t.Errorf("decoded %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must appear, with its line
	}{
		{"unknown key", "listen: 127.0.0.1:1\nlisten_addr: x\nproviders: []\n", nil,
			[]string{"line 2: listen_addr: unknown key; did you mean \"listen\"?"}},
		{"unknown nested key", "providers:\n  - id: a\n    issuer: https://a\n    client_id: c\n    client_secret: s\n    secret: x\n", nil,
			[]string{"line 6: providers[0].secret: unknown key"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", nil, []string{"line 2:", `"listen" already defined`}},
		{"unset variable", "providers:\n  - id: a\n    issuer: https://a\n    client_id: c\n    client_secret: ${NOPE}\n", nil,
			[]string{"line 5: providers[0].client_secret: environment variable NOPE is not set"}},
		{"every validation problem at once", "listen: nope\nproviders:\n  - id: Bad!\n    issuer: ftp://x\n    client_id: c\n  - id: b\n    issuer: https://b\n    client_id: c\n    client_secret: s\n    token_endpoint_auth_method: magic\n", nil,
			[]string{"line 1: listen:", "line 3: providers[0].id:", "line 4: providers[0].issuer:", "providers[0].client_secret: is required",
				"line 10: providers[1].token_endpoint_auth_method:"}},
		{"no providers", "listen: 127.0.0.1:1\n", nil, []string{"providers: at least one provider is required"}},
		{"duplicate provider id", "providers:\n  - {id: a, issuer: 'https://a', client_id: c, client_secret: s}\n  - {id: a, issuer: 'https://b', client_id: c, client_secret: s}\n", nil,
			[]string{"line 3: providers[1].id: \"a\" is already used by providers[0]"}},
		{"proxy counts mixed with forwarded", "trusted_proxies: {x_for: 1, forwarded: 1}\nproviders:\n  - {id: a, issuer: 'https://a', client_id: c, client_secret: s}\n", nil,
			[]string{"line 1: trusted_proxies.forwarded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("b.yaml", []byte(c.yaml), lookupIn(c.env))
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestConfigWarnings(t *testing.T) {
	cfg := Config{PublicURL: "http://auth.example.com"}
	cfg.TrustedProxies.XProto = 1
	w := strings.Join(cfg.Warnings(), "\n")
	if !strings.Contains(w, "from") || !strings.Contains(w, "Secure") {
		t.Errorf("warnings: %s", w)
	}
}
