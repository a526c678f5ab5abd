package broker

import (
	"errors"

	"github.com/oidc-broker/oidc-broker/broker/upstream"
)

// UpstreamConfig is one app behind the broker's reverse proxy
// (upstream.Config): a request goes to the most specific upstream that
// matches it.
type UpstreamConfig = upstream.Config

// upstreamConfigs returns the configured upstreams, the single upstream
// shorthand expanded to one entry for "/".
func (c Config) upstreamConfigs() []UpstreamConfig {
	if c.Upstream != "" {
		return []UpstreamConfig{{Path: "/", URL: c.Upstream}}
	}
	return c.Upstreams
}

// upstreamProblems validates upstreams (upstream.Problems); each message
// starts with the field's YAML path. (The shorthand's URL is checked with
// the other top-level settings.)
func (c Config) upstreamProblems() []error {
	var errs []error
	if c.Upstream != "" && len(c.Upstreams) > 0 {
		errs = append(errs, errors.New("upstream: cannot be combined with upstreams (make it an upstreams entry with path: /)"))
	}
	return append(errs, upstream.Problems(c.Upstreams)...)
}
