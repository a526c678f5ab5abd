package providers

// testTypes are the types the tests of this package open: the generic
// ones. The other types are tested in their own packages.
var testTypes = Types{OIDC, OAuth2}

// validate checks c as a configuration with testTypes does.
func (c Config) validate() error { return testTypes.Validate(c) }
