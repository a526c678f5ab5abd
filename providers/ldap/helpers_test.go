package ldap

import (
	"io"
	"log/slog"

	"github.com/oidc-broker/oidc-broker/providers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testTypes are the generic types and this one.
var testTypes = providers.Types{providers.OIDC, providers.OAuth2, Type}

// validate checks c as the broker does.
func validate(c providers.Config) error { return testTypes.Validate(c) }
