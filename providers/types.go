package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Type is one value of Config.Type ("oidc", "ldap", "github"): how the
// settings of a provider of that type are checked, how it is opened and
// how `oidc-broker check --online` probes it. Package providers holds the
// generic types, OIDC and OAuth2; the others live in sub-packages, and
// package providers/all lists every type the broker knows. Nothing
// registers itself: whoever checks a configuration or builds a Registry
// hands over the Types.
type Type struct {
	// Name is the value of Config.Type.
	Name string
	// Check reports the problems of the settings this type reads, each
	// prefixed with its YAML key. Types.Validate checks what every type
	// shares (the id, and the settings of other types left unset) before.
	Check func(c Config) []error
	// Open returns the provider of c, which Check accepted; opts have
	// their defaults. It makes no network call.
	Open func(c Config, opts Options) Provider
	// Probe adds to r what c's IdP (or directory) tells about the
	// settings; r names the provider already.
	Probe func(ctx context.Context, c Config, hc *http.Client, r *Report)
	// Reopen: Registry.Update opens these providers anew even when their
	// settings did not change, because they read files (or hold
	// connections) that a reload must renew.
	Reopen bool
}

// Types are the provider types a configuration may name, in the order an
// error lists them.
type Types []Type

// OIDC is the type "oidc" (also an empty Config.Type): an OpenID Provider,
// found by discovery.
var OIDC = Type{Name: TypeOIDC, Check: Config.redirectProblems, Open: openOIDC,
	Probe: func(ctx context.Context, c Config, hc *http.Client, r *Report) {
		r.probeOIDC(ctx, c, discoveryURL(c.Issuer), hc)
	}}

// OAuth2 is the type "oauth2": a plain OAuth 2.0 server without ID tokens,
// whose endpoints are configured.
var OAuth2 = Type{Name: TypeOAuth2, Check: Config.redirectProblems, Open: openOAuth2, Probe: probeOAuth2}

func (ts Types) lookup(name string) (Type, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Type{}, false
}

// Names lists the types' names, in order.
func (ts Types) Names() []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names
}

// Validate reports every problem in c, each prefixed with its YAML key:
// what every type shares, then what its type checks. A type ts does not
// know is an error that names it, and the rest is checked as for an
// OpenID provider, so that one run reports everything.
func (ts Types) Validate(c Config) error {
	errs := c.sharedProblems()
	t, known := ts.lookup(c.providerType())
	if !known {
		errs = append(errs, fmt.Errorf("type: %q is not one of %s", c.Type, strings.Join(ts.Names(), ", ")))
		return errors.Join(append(errs, c.unknownTypeProblems()...)...)
	}
	return errors.Join(append(errs, t.Check(c)...)...)
}

// Open validates cfg and returns its provider. It makes no network call:
// discovery happens on first use.
func (ts Types) Open(cfg Config, opts Options) (Provider, error) {
	if err := ts.Validate(cfg); err != nil {
		return nil, err
	}
	t, _ := ts.lookup(cfg.providerType())
	return t.Open(cfg, opts.withDefaults()), nil
}

// maxProbes bounds how many providers ProbeAll asks at once.
const maxProbes = 8

// ProbeAll probes every configuration, at most eight at a time, each
// within timeout, and returns the reports in the order of cfgs.
func (ts Types) ProbeAll(ctx context.Context, cfgs []Config, hc *http.Client, timeout time.Duration) []Report {
	reports := make([]Report, len(cfgs))
	slots := make(chan struct{}, maxProbes)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			reports[i] = ts.Probe(pctx, cfg, hc)
		})
	}
	wg.Wait()
	return reports
}

// Probe asks cfg's identity provider what the broker will rely on, and
// reports it: for an OpenID provider the discovery document (fetched and
// read the way discovery does it: the issuer must equal cfg.Issuer exactly,
// and the ID token algorithms are picked by the same rules), PKCE, logout,
// RFC 9207, the token endpoint authentication method and the JWKS. A plain
// OAuth2 provider has nothing to discover; its endpoints must answer. The
// other types say themselves what they ask (Type.Probe); a type ts does not
// know is probed as an OpenID provider. Probe never sends the client
// secret. ctx bounds the whole probe; hc nil means a client with a 10 s
// timeout.
func (ts Types) Probe(ctx context.Context, cfg Config, hc *http.Client) Report {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	r := Report{Provider: cfg.ID, Type: cfg.providerType(), Issuer: cfg.Issuer}
	t, ok := ts.lookup(cfg.providerType())
	if !ok {
		t = OIDC
	}
	t.Probe(ctx, cfg, hc, &r)
	return r
}
