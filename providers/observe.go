package providers

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Observing the calls to identity providers. A program that wants to know
// how its IdPs answer (the broker's metrics) sets Options.Observe; each
// provider then reports every HTTP request it makes to its IdP, by provider
// and endpoint, with its duration and outcome, and never what was sent or
// received.

// The endpoints an IdPCall names.
const (
	// EndpointDiscovery is the discovery document (OpenID Connect Discovery
	// 1.0 §4).
	EndpointDiscovery = "discovery"
	// EndpointJWKS is the IdP's key set (jwks_uri).
	EndpointJWKS = "jwks"
	// EndpointToken is the token endpoint (RFC 6749 §3.2): code exchange
	// and refresh.
	EndpointToken = "token"
	// EndpointUserinfo is the userinfo endpoint (OpenID Connect Core §5.3),
	// or a plain OAuth2 provider's user API.
	EndpointUserinfo = "userinfo"
	// EndpointIntrospection is the introspection endpoint (RFC 7662),
	// asked about API clients' opaque access tokens.
	EndpointIntrospection = "introspection"
	// EndpointOther is any other URL.
	EndpointOther = "other"
)

// IdPCall is one HTTP request a provider made to its identity provider.
// A JWKS response replayed from the provider's cache (see
// Options.JWKSMinInterval) is no call.
type IdPCall struct {
	// Provider is the provider's id.
	Provider string
	// Endpoint is one of the Endpoint constants.
	Endpoint string
	// Duration runs until the response header arrived, or the request
	// failed.
	Duration time.Duration
	// Status is the response's HTTP status; 0 when none arrived.
	Status int
	// Err is the transport's error (connection refused, timeout...); nil
	// when a response arrived, whatever its status.
	Err error
}

// observedTransport reports each request through observe (when set) and
// tells the endpoints apart by URL, without query: the discovery URL is
// known from the start, the others once discovery has named them.
type observedTransport struct {
	base     http.RoundTripper // nil: http.DefaultTransport
	provider string
	observe  func(IdPCall)

	mu        sync.RWMutex
	endpoints map[string]string // endpointKey(URL) → Endpoint constant
}

// newObservedTransport wraps base for provider, with the endpoints known so
// far (URL → Endpoint constant; empty URLs are skipped).
func newObservedTransport(opts Options, provider string, base http.RoundTripper, endpoints map[string]string) *observedTransport {
	t := &observedTransport{base: base, provider: provider, observe: opts.Observe, endpoints: map[string]string{}}
	t.learn(endpoints)
	return t
}

// observedClient is hc with every request reported, for a provider whose
// endpoints are all configured (plain OAuth2). It is hc itself without
// Options.Observe.
func observedClient(opts Options, provider string, hc *http.Client, endpoints map[string]string) *http.Client {
	if opts.Observe == nil {
		return hc
	}
	c := *hc
	c.Transport = newObservedTransport(opts, provider, hc.Transport, endpoints)
	return &c
}

// learn adds endpoints (URL → Endpoint constant); empty URLs are skipped.
func (t *observedTransport) learn(endpoints map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for u, name := range endpoints {
		if k, ok := endpointKey(u); ok {
			t.endpoints[k] = name
		}
	}
}

func (t *observedTransport) endpoint(u *url.URL) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if name, ok := t.endpoints[u.Scheme+"://"+u.Host+u.Path]; ok {
		return name
	}
	return EndpointOther
}

func (t *observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.observe == nil {
		return base.RoundTrip(req)
	}
	start := time.Now()
	resp, err := base.RoundTrip(req)
	call := IdPCall{Provider: t.provider, Endpoint: t.endpoint(req.URL), Duration: time.Since(start), Err: err}
	if resp != nil {
		call.Status = resp.StatusCode
	}
	t.observe(call)
	return resp, err
}

// endpointKey is a URL without query and fragment, as endpoint compares
// them; false for an empty or unparsable one.
func endpointKey(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	return u.Scheme + "://" + u.Host + u.Path, true
}
