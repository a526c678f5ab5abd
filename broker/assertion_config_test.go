package broker

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

func TestAssertionConfigProblems(t *testing.T) {
	dir := t.TempDir()
	key := func(kind string) string { return writeKey(t, dir, kind+".pem", kind) }
	ec := key("ec-pkcs8")
	cases := []struct {
		name string
		a    AssertionConfig
		want string // "" when valid
	}{
		{"generated key", AssertionConfig{Enabled: true}, ""},
		{"ECDSA PKCS#8", AssertionConfig{SigningKeys: []string{ec}}, ""},
		{"ECDSA SEC1 with EC PARAMETERS", AssertionConfig{SigningKeys: []string{key("ec-sec1")}, Algorithm: "ES256"}, ""},
		{"Ed25519", AssertionConfig{SigningKeys: []string{key("ed25519")}, Algorithm: "EdDSA"}, ""},
		{"RSA PKCS#1", AssertionConfig{SigningKeys: []string{key("rsa-pkcs1")}, Algorithm: "RS256"}, ""},
		{"RSA PKCS#8, then others", AssertionConfig{SigningKeys: []string{key("rsa-pkcs8"), ec}}, ""},
		{"all settings", AssertionConfig{Enabled: true, Header: "X-App-Identity", Lifetime: time.Minute, Audience: "dash"}, ""},

		{"unknown algorithm", AssertionConfig{Algorithm: "HS256"}, `assertion.algorithm: "HS256" is not one of ES256, EdDSA, RS256`},
		{"algorithm of another key type", AssertionConfig{Algorithm: "EdDSA", SigningKeys: []string{ec}},
			"assertion.algorithm: EdDSA does not match signing_keys[0], a ES256 key"},
		{"lifetime too long", AssertionConfig{Lifetime: 10 * time.Minute}, "assertion.lifetime: 10m0s must be between 30s and 5m0s"},
		{"lifetime too short", AssertionConfig{Lifetime: time.Second}, "assertion.lifetime:"},
		{"header with underscore", AssertionConfig{Header: "X_App"}, `assertion.header: "X_App" must be letters, digits and '-'`},
		{"header with space", AssertionConfig{Header: "X App"}, "assertion.header:"},
		{"header Cookie", AssertionConfig{Header: "cookie"}, `assertion.header: "cookie" is used for something else`},
		{"header X-Auth-Request-User", AssertionConfig{Header: "X-Auth-Request-User"}, "is used for something else"},
		{"header X-Forwarded-*", AssertionConfig{Header: "x-forwarded-user"}, "is used for something else"},
		{"audience with a newline", AssertionConfig{Audience: "a\nb"}, "assertion.audience: must not contain control characters"},
		{"missing key file", AssertionConfig{SigningKeys: []string{ec, filepath.Join(dir, "nope.pem")}},
			`assertion.signing_keys[1]: cannot read "` + filepath.Join(dir, "nope.pem") + `": no such file or directory`},
		{"not PEM", AssertionConfig{SigningKeys: []string{key("garbage")}}, "assertion.signing_keys[0]: \"" + dir + "/garbage.pem\": holds no PEM private key"},
		{"public key only", AssertionConfig{SigningKeys: []string{key("public")}}, "holds no PEM private key"},
		{"encrypted", AssertionConfig{SigningKeys: []string{key("encrypted")}}, "is encrypted"},
		{"two keys in one file", AssertionConfig{SigningKeys: []string{key("two")}}, "holds more than one private key"},
		{"P-384", AssertionConfig{SigningKeys: []string{key("p384")}}, "is an ECDSA key on P-384; only P-256 (ES256) is supported"},
		{"RSA 1024", AssertionConfig{SigningKeys: []string{key("rsa1024")}}, "is a 1024-bit RSA key; at least 2048 bits are required"},
		{"the same key twice", AssertionConfig{SigningKeys: []string{ec, ec}}, "assertion.signing_keys[1]: \"" + ec + "\" is the same key as signing_keys[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Providers: noNetworkProviders, Assertion: c.a}
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v\nwant %q", err, c.want)
			}
			if len(providers.Flatten(err)) != 1 {
				t.Errorf("%d problems, want 1: %v", len(providers.Flatten(err)), err)
			}
		})
	}
}

func TestAssertionConfigFromYAML(t *testing.T) {
	dir := t.TempDir()
	good := writeKey(t, dir, "good.pem", "ed25519")
	yaml := `providers:
  - {id: kc, issuer: "https://kc.example", client_id: c, client_secret: s}
assertion:
  enabled: true
  header: X-Dash-Identity
  lifetime: 2m
  signing_keys:
    - ` + good + `
    - ` + filepath.Join(dir, "missing.pem") + `
`
	_, err := ParseConfig("b.yaml", []byte(yaml), lookupIn(nil))
	var cerr *ConfigError
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Line != 9 ||
		!strings.HasPrefix(cerr.Problems[0].Message, "assertion.signing_keys[1]: cannot read") {
		t.Fatalf("got %v", err)
	}
	cfg, err := ParseConfig("b.yaml", []byte(strings.Replace(yaml, "    - "+filepath.Join(dir, "missing.pem")+"\n", "", 1)), lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Assertion; !a.Enabled || a.Header != "X-Dash-Identity" || a.Lifetime != 2*time.Minute || len(a.SigningKeys) != 1 {
		t.Errorf("decoded %+v", a)
	}
}
