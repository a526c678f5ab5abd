package broker

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/configcheck"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/providers/all"
	"github.com/oidc-broker/oidc-broker/proxyfix"
	"github.com/oidc-broker/oidc-broker/selection"
)

// Config is the whole broker configuration: plain data, decoded strictly
// from YAML by LoadConfig or built in Go. New validates it. docs/config.md
// documents every field with its default.
type Config struct {
	// Listen is the address the server binds. Default "127.0.0.1:4180".
	Listen string `yaml:"listen"`
	// Server sets the HTTP server's timeouts and header limit
	// (httpserver.go).
	Server ServerConfig `yaml:"server"`
	// PublicURL, when set, is the broker's external base URL
	// (https://auth.example.com or https://example.com/auth). It wins over
	// everything the request says.
	PublicURL string `yaml:"public_url"`
	// ForceHTTPS upgrades the scheme of request-derived URLs to https.
	ForceHTTPS bool `yaml:"force_https"`
	// AllowedHosts, when non-empty, lists the host names (exact, or
	// ".example.com" for the domain and its subdomains) a request may name;
	// others get 400 before any URL is built.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// TrustedProxies says which forwarding headers to believe, by hop count.
	TrustedProxies proxyfix.Config `yaml:"trusted_proxies"`
	// Upstream is the app to reverse-proxy signed-in users to (optional):
	// shorthand for Upstreams with one entry for path "/". Setting both is
	// an error.
	Upstream string `yaml:"upstream"`
	// Upstreams are the apps to reverse-proxy signed-in users to, chosen
	// by path prefix and optionally host (see UpstreamConfig). Without
	// any, the broker serves forward-auth only.
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	// Routes are the access rules, first match wins (docs/access.md).
	Routes []Route `yaml:"routes"`
	// Default is the access rule for requests no route matches. The zero
	// value allows every signed-in user.
	Default AccessRule `yaml:"default"`
	// RedirectHosts lists the hosts besides the broker's own (exact, or
	// ".example.com"; optionally ":port") an absolute rd may name.
	RedirectHosts []string `yaml:"redirect_hosts"`
	// Session configures the session store and cookie.
	Session SessionConfig `yaml:"session"`
	// Assertion configures the signed identity assertion (docs/assertion.md).
	Assertion AssertionConfig `yaml:"assertion"`
	// ForwardAuth is what forward-auth's answer carries besides the
	// identity: the user's tokens, for the apps that ask
	// (tokenrelay.go).
	ForwardAuth ForwardAuthConfig `yaml:"forward_auth"`
	// Logout configures signing out at the identity providers
	// (docs/logout.md).
	Logout LogoutConfig `yaml:"logout"`
	// Readiness says what /readyz requires besides the session store
	// (package readiness).
	Readiness ReadinessConfig `yaml:"readiness"`
	// Selection customises the sign-in page.
	Selection selection.Config `yaml:"selection"`
	// Providers are the identity providers, shown in this order.
	Providers []providers.Config `yaml:"providers"`
	// Log configures logging (used by the binary) and request IDs.
	Log LogConfig `yaml:"log"`
	// Metrics configures the Prometheus endpoint of the binary
	// (docs/observability.md).
	Metrics MetricsConfig `yaml:"metrics"`
}

// SessionConfig configures server-side sessions.
type SessionConfig struct {
	// Store is "memory" (default: one process) or "redis" (shared by
	// replicas; see Redis). Sessions are kept server-side; the cookie
	// carries only a random token.
	Store string `yaml:"store"`
	// Redis configures the Redis store (docs/sessions.md).
	Redis RedisConfig `yaml:"redis"`
	// CookieName is the session cookie's base name. Default "oidc_broker".
	// It gets the "__Host-" prefix when the public scheme is https and no
	// CookieDomain is set (or "__Secure-" under a path prefix).
	CookieName string `yaml:"cookie_name"`
	// CookieDomain shares the session with subdomains (optional).
	CookieDomain string `yaml:"cookie_domain"`
	// Lifetime is the absolute session lifetime. Default 24h.
	Lifetime time.Duration `yaml:"lifetime"`
	// IdleTimeout ends a session unused for this long. Default 0 (off).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PersistentMax, when positive, offers "Keep me signed in" on the
	// sign-in page: a session started with it lasts PersistentMax (instead
	// of Lifetime) and its cookie survives the browser's restart. Default 0
	// (off: browser-session cookies only).
	PersistentMax time.Duration `yaml:"persistent_max"`
	// OutliveTokens lets a session last its own lifetime after the IdP's
	// tokens expired and could not be renewed. Default true. With false a
	// session ends when its tokens expire and no refresh renews them.
	// Either way an expired token is refreshed when the IdP issued a
	// refresh token, and a refused refresh ends the session
	// (docs/logout.md).
	OutliveTokens *bool `yaml:"outlive_tokens"`
	// CacheTTL is how long a replica may answer from its own memory a
	// session read from Redis: at most this long after a sign-out or other
	// revocation on another replica whose invalidation it missed (they are
	// pushed within milliseconds otherwise). Default 5s (nil); 0 turns the
	// cache off. Redis store only (docs/sessions.md#the-session-cache).
	CacheTTL *time.Duration `yaml:"cache_ttl"`
}

// LogConfig configures the binary's logger.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
	// RequestIDHeader names the header in which a trusted proxy (a peer in
	// trusted_proxies.from) sends its request ID, such as X-Request-Id;
	// the broker logs it, and passes it on to the app and back in the
	// response. Default "": every request gets a new ID, sent on as
	// X-Request-Id (docs/observability.md).
	RequestIDHeader string `yaml:"request_id_header"`
}

// Defaults.
const (
	DefaultListen     = "127.0.0.1:4180"
	DefaultCookieName = "oidc_broker"
	DefaultLifetime   = 24 * time.Hour
)

// Validate reports every problem at once; each message starts with the YAML
// path of its field (e.g. "providers[1].issuer: is required").
func (c Config) Validate() error { return c.validate(true) }

func (c Config) validate(needProviders bool) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Listen != "" {
		if p := configcheck.ListenProblem(c.Listen); p != "" {
			add("listen", "%s", p)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			add("public_url", "%q must be an absolute http(s) URL without query, fragment or userinfo", c.PublicURL)
		} else if p := configcheck.URLPortProblem(u); p != "" {
			add("public_url", "%q: %s", c.PublicURL, p)
		}
	}
	if c.Upstream != "" {
		if u, err := url.Parse(c.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("upstream", "%q must be an absolute http(s) URL", c.Upstream)
		} else if p := configcheck.URLPortProblem(u); p != "" {
			add("upstream", "%q: %s", c.Upstream, p)
		}
	}
	errs = append(errs, c.Server.Problems()...) // package httpserver
	errs = append(errs, c.upstreamProblems()...)
	errs = append(errs, c.tokenRelayProblems()...) // tokenrelay.go
	for i, h := range c.AllowedHosts {
		if _, err := access.ParseHostPattern(h); err != nil {
			add(fmt.Sprintf("allowed_hosts[%d]", i), "%q %v", h, err)
		}
	}
	errs = append(errs, prefixed("trusted_proxies.", c.TrustedProxies.Validate())...)
	errs = append(errs, c.Session.problems()...)
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("log.format", "%q is not one of text, json", c.Log.Format)
	}
	errs = append(errs, c.requestIDHeaderProblems()...) // requestlog.go
	errs = append(errs, c.metricsProblems()...)         // metrics.go
	errs = append(errs, c.selectionProblems()...)
	errs = append(errs, c.accessProblems()...)
	errs = append(errs, c.Assertion.Problems()...)
	errs = append(errs, c.Readiness.Problems()...)
	if needProviders && len(c.Providers) == 0 {
		add("providers", "at least one provider is required")
	}
	seen := map[string]int{}
	types := all.Types()
	for i, p := range c.Providers {
		errs = append(errs, prefixed(fmt.Sprintf("providers[%d].", i), types.Validate(p))...)
		if j, dup := seen[p.ID]; dup && p.ID != "" {
			add(fmt.Sprintf("providers[%d].id", i), "%q is already used by providers[%d]", p.ID, j)
		}
		seen[p.ID] = i
	}
	errs = append(errs, basicAuthProblems(c.Providers)...)
	errs = append(errs, apiTokensProblems(c.Providers)...) // apiclients.go
	errs = append(errs, c.logoutProblems()...)             // signout.go
	return errors.Join(errs...)
}

// Warnings lists settings that are valid but probably not what was meant.
func (c Config) Warnings() []string {
	var w []string
	tp := c.TrustedProxies
	if tp.Enabled() && len(tp.From) == 0 {
		w = append(w, "trusted_proxies: hop counts are set but `from` is empty: any peer that reaches the broker directly can forge forwarding headers")
	}
	if c.ForwardAuth.Enabled() && len(tp.From) == 0 {
		w = append(w, "forward_auth: tokens are asked for but trusted_proxies.from is empty: forward-auth answers carry them only to a peer listed there, so none will")
	}
	if strings.HasPrefix(c.PublicURL, "http://") {
		w = append(w, "public_url: is http, so session cookies cannot be Secure; use https outside local testing")
	}
	w = append(w, c.Session.warnings()...)
	w = append(w, c.selectionWarnings()...)
	w = append(w, c.accessWarnings()...)
	w = append(w, c.basicAuthWarnings()...)
	w = append(w, c.requestIDHeaderWarnings()...)
	w = append(w, c.metricsWarnings()...)
	return w
}

func prefixed(prefix string, err error) []error {
	var out []error
	for _, e := range providers.Flatten(err) {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return out
}

func validCookieName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}
