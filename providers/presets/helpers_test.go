package presets

import (
	"io"
	"log/slog"

	"github.com/oidc-broker/oidc-broker/providers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testTypes are the generic types and the presets. (A function: the
// presets are filled in by init.)
func testTypes() providers.Types {
	return append(providers.Types{providers.OIDC, providers.OAuth2}, Types()...)
}

// validate checks c as the broker does.
func validate(c providers.Config) error { return testTypes().Validate(c) }
