package providers

// testTypes are the types the tests of this package open. They are set in
// init, once presets.go's init has filled the presets.
var testTypes Types

func init() { testTypes = append(Types{OIDC, OAuth2}, Presets()...) }

// validate checks c as a configuration with testTypes does.
func (c Config) validate() error { return testTypes.Validate(c) }
