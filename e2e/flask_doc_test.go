package e2e

import (
	"os"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker"
)

// TestFlaskExampleConfigs: the broker configurations docs/flask.md quotes (the guide's
// pytest suite checks the quotes) are valid configurations. It needs no server, so it runs
// without the e2e tag too.
func TestFlaskExampleConfigs(t *testing.T) {
	for _, file := range []string{"../examples/flask/broker.yaml", "../examples/flask/dash-broker.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := broker.ParseConfig(file, data, func(name string) (string, bool) {
			return "example-secret-0123456789abcdef", name == "OIDC_CLIENT_SECRET"
		})
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if len(cfg.Routes) == 0 || !cfg.Routes[0].Public || !cfg.Assertion.Enabled {
			t.Errorf("%s: want a public first route and the assertion on", file)
		}
	}
}
