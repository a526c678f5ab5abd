package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Severity grades a Finding.
type Severity int

const (
	// SeverityOK: nothing to act on.
	SeverityOK Severity = iota
	// SeverityWarning: logins work, but something is missing or unknown
	// (RP-initiated logout, back-channel logout, PKCE support).
	SeverityWarning
	// SeverityError: the broker cannot sign anyone in with this provider.
	SeverityError
)

func (s Severity) String() string {
	switch s {
	case SeverityOK:
		return "ok"
	case SeverityWarning:
		return "warning"
	}
	return "error"
}

// MarshalText writes the severity as "ok", "warning" or "error".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one thing Types.Probe established about a provider.
type Finding struct {
	// Check is what was looked at: for an OpenID provider "discovery",
	// "issuer", "id_token_signing_algs", "pkce", "end_session",
	// "backchannel_logout", "iss_parameter", "token_endpoint_auth_method"
	// and "jwks"; for a plain OAuth2 provider "discovery" and its endpoints
	// by their YAML keys; for a local provider "htpasswd_file"; for an LDAP
	// provider "connect" (one per server), "bind", "server", "user_search"
	// and "groups".
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Message says what was found, for people.
	Message string `json:"message"`
}

// Report is what Types.Probe found out about one provider.
type Report struct {
	Provider string    `json:"provider"`
	Type     string    `json:"type"`
	Issuer   string    `json:"issuer,omitempty"`
	Findings []Finding `json:"findings"`
}

// Worst is the highest severity among the findings.
func (r Report) Worst() Severity {
	worst := SeverityOK
	for _, f := range r.Findings {
		worst = max(worst, f.Severity)
	}
	return worst
}

// Add records a finding: format and args make its message.
func (r *Report) Add(check string, s Severity, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Check: check, Severity: s, Message: fmt.Sprintf(format, args...)})
}

// The checks of a report (Finding.Check).
const (
	checkDiscovery   = "discovery"
	checkIss         = "issuer"
	checkAlgs        = "id_token_signing_algs"
	checkPKCE        = "pkce"
	checkEndSession  = "end_session"
	checkBackchannel = "backchannel_logout"
	checkIssParam    = "iss_parameter"
	checkAuthMethod  = "token_endpoint_auth_method"
	checkJWKS        = "jwks"
)

// probeOAuth2 reports a plain OAuth2 provider: nothing to discover, and
// whether its endpoints answer.
func probeOAuth2(ctx context.Context, cfg Config, hc *http.Client, r *Report) {
	r.Add(checkDiscovery, SeverityOK, "nothing to discover: a plain OAuth 2.0 provider's endpoints are configured")
	for _, e := range []struct{ key, url string }{{"authorization_endpoint", cfg.AuthorizationEndpoint},
		{"token_endpoint", cfg.TokenEndpoint}, {"userinfo_endpoint", cfg.UserinfoEndpoint}} {
		shown := e.url
		if u, err := url.Parse(e.url); err == nil {
			shown = u.Redacted() // a password in the URL is not printed
		}
		if status, err := Answers(ctx, hc, e.url); err != nil {
			r.Add(e.key, SeverityError, "%s is unreachable: %s", shown, NetworkReason(err))
		} else {
			r.Add(e.key, SeverityOK, "%s answers (HTTP %d)", shown, status)
		}
	}
}

func (r *Report) probeOIDC(ctx context.Context, cfg Config, wellKnown string, hc *http.Client) {
	f := fetchDiscovery(ctx, cfg.Issuer, wellKnown, hc)
	var doc oidc.DiscoveryConfiguration
	switch {
	case f.status == 0:
		r.Add(checkDiscovery, SeverityError, "%s is unreachable: %s", f.url, NetworkReason(f.err))
		return
	case f.status != http.StatusOK:
		r.Add(checkDiscovery, SeverityError, "%s answered HTTP %d", f.url, f.status)
		return
	case len(f.body) == 0 || json.Unmarshal(f.body, &doc) != nil:
		r.Add(checkDiscovery, SeverityError, "%s answered HTTP 200 without a discovery document", f.url)
		return
	}
	meta, algs, err := readDiscovery(cfg, f.body)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		r.Add(checkDiscovery, SeverityError, "%s: the discovery document is malformed: %v", f.url, typeErr)
		return
	}
	r.Add(checkDiscovery, SeverityOK, "%s answered HTTP 200", f.url)

	if doc.Issuer == cfg.Issuer {
		r.Add(checkIss, SeverityOK, "the document's issuer equals the configured one")
	} else {
		r.Add(checkIss, SeverityError, "the document says %q, the configuration says %q: they must be equal, character for character", doc.Issuer, cfg.Issuer)
	}
	r.judgeAlgs(cfg, meta.Algs, algs)
	r.judgeFeatures(cfg, &doc, meta)
	if len(algs) == 0 {
		algs = asymmetricAlgs // still tell whether the keys themselves are usable
	}
	r.probeJWKS(ctx, hc, doc.JwksURI, algs)
}

// judgeFeatures reports what the IdP supports beyond signing in: PKCE,
// logout, RFC 9207 and the configured token endpoint authentication.
func (r *Report) judgeFeatures(cfg Config, doc *oidc.DiscoveryConfiguration, meta discoveryMetadata) {
	switch {
	case doc.CodeChallengeMethodsSupported == nil:
		r.Add(checkPKCE, SeverityWarning, "unknown: code_challenge_methods_supported is absent (the broker always sends S256)")
	case slices.Contains(doc.CodeChallengeMethodsSupported, oidc.CodeChallengeMethodS256):
		r.Add(checkPKCE, SeverityOK, "S256 supported")
	default:
		r.Add(checkPKCE, SeverityWarning, "code_challenge_methods_supported lacks S256 (it lists %v): the IdP may ignore PKCE", doc.CodeChallengeMethodsSupported)
	}
	if doc.EndSessionEndpoint != "" {
		r.Add(checkEndSession, SeverityOK, "RP-initiated logout at %s", doc.EndSessionEndpoint)
	} else {
		r.Add(checkEndSession, SeverityWarning, "no end_session_endpoint: signing out ends the broker's session only, not the IdP's")
	}
	switch {
	case doc.BackChannelLogoutSupported && doc.BackChannelLogoutSessionSupported:
		r.Add(checkBackchannel, SeverityOK, "supported, with sid")
	case doc.BackChannelLogoutSupported:
		r.Add(checkBackchannel, SeverityOK, "supported, without sid: a logout token ends every session of its user")
	default:
		r.Add(checkBackchannel, SeverityWarning, "not supported: the broker is not told when a session ends at the IdP")
	}
	switch {
	case meta.IssParameter:
		r.Add(checkIssParam, SeverityOK, "authorization_response_iss_parameter_supported (RFC 9207): callbacks without iss are refused")
	case cfg.RequireIssParameter:
		r.Add(checkIssParam, SeverityWarning, "not announced, but require_iss_parameter is set: callbacks without iss will be refused")
	default:
		r.Add(checkIssParam, SeverityWarning, "not announced (RFC 9207); the per-provider callback URL still tells IdPs apart")
	}
	methods := doc.TokenEndpointAuthMethodsSupported
	if methods == nil {
		methods = []oidc.AuthMethod{oidc.AuthMethodBasic} // the default (OpenID Connect Discovery §3)
	}
	if slices.Contains(methods, oidc.AuthMethod(cfg.authMethod())) {
		r.Add(checkAuthMethod, SeverityOK, "%s supported", cfg.authMethod())
	} else {
		r.Add(checkAuthMethod, SeverityWarning, "the IdP lists %v, not %s: the token request may be refused", methods, cfg.authMethod())
	}
}

// judgeAlgs reports the ID token algorithms: those the IdP offers (RS256
// when it lists none, OpenID Connect Discovery §3) and the ones among them
// the broker accepts (readDiscovery's choice).
func (r *Report) judgeAlgs(cfg Config, offered, accepted []string) {
	shown := strings.Join(offered, ", ")
	if len(offered) == 0 {
		offered, shown = []string{"RS256"}, "none listed (RS256 by default)"
	}
	usable := slices.DeleteFunc(slices.Clone(accepted), func(a string) bool { return !slices.Contains(offered, a) })
	switch {
	case len(usable) > 0:
		r.Add(checkAlgs, SeverityOK, "offered: %s; accepted: %s", shown, strings.Join(usable, ", "))
	case len(cfg.IDTokenSigningAlgs) > 0:
		r.Add(checkAlgs, SeverityError, "offered: %s; id_token_signing_algs allows only %s", shown, strings.Join(cfg.IDTokenSigningAlgs, ", "))
	default:
		r.Add(checkAlgs, SeverityError, "offered: %s; none is one the broker accepts (asymmetric only: RS*, PS*, ES*, EdDSA)", shown)
	}
}

// probeJWKS fetches the IdP's keys and counts those that can verify an ID
// token signed with one of algs, by zitadel's rules (oidc.FindMatchingKey).
func (r *Report) probeJWKS(ctx context.Context, hc *http.Client, jwksURI string, algs []string) {
	if jwksURI == "" {
		r.Add(checkJWKS, SeverityError, "the discovery document has no jwks_uri")
		return
	}
	body, status, err := get(ctx, hc, jwksURI)
	var set jose.JSONWebKeySet
	switch {
	case err != nil:
		r.Add(checkJWKS, SeverityError, "%s is unreachable: %s", jwksURI, NetworkReason(err))
		return
	case status != http.StatusOK:
		r.Add(checkJWKS, SeverityError, "%s answered HTTP %d", jwksURI, status)
		return
	}
	if err := json.Unmarshal(body, &set); err != nil {
		r.Add(checkJWKS, SeverityError, "%s is not a JWK Set: %v", jwksURI, err)
		return
	}
	if n := usableKeys(set.Keys, algs); n > 0 {
		r.Add(checkJWKS, SeverityOK, "%s: %d usable signing key(s)", jwksURI, n)
	} else {
		r.Add(checkJWKS, SeverityError, "%s: %d key(s), none a public signing key for %s", jwksURI, len(set.Keys), strings.Join(algs, ", "))
	}
}

func usableKeys(keys []jose.JSONWebKey, algs []string) int {
	n := 0
	for _, k := range keys {
		if !k.Valid() || !k.IsPublic() {
			continue
		}
		if slices.ContainsFunc(algs, func(alg string) bool {
			_, err := oidc.FindMatchingKey(k.KeyID, oidc.KeyUseSignature, alg, k)
			return err == nil
		}) {
			n++
		}
	}
	return n
}

// fetched is one fetch of a discovery document.
type fetched struct {
	url    string
	status int    // of the last response; 0 when nothing answered
	body   []byte // kept when the status is 200, even if the issuer differs
	err    error  // client.Discover's: nil, oidc.ErrIssuerInvalid, or why it failed
}

// fetchDiscovery fetches issuer's discovery document from u as discovery
// does (zitadel's client.Discover through an idpTransport), keeping the
// status and the body for a report.
func fetchDiscovery(ctx context.Context, issuer, u string, hc *http.Client) fetched {
	rec := &statusRecorder{base: hc.Transport}
	tr := &idpTransport{base: guardBodies(rec), discoveryURL: u, now: time.Now}
	c := *hc
	c.Transport = tr
	_, err := client.Discover(ctx, issuer, &c, u)
	return fetched{url: u, status: int(rec.status.Load()), body: tr.discovery(), err: err}
}

// statusRecorder remembers the status of the last response through it.
type statusRecorder struct {
	base   http.RoundTripper
	status atomic.Int32
}

func (t *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err == nil {
		t.status.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// get fetches u, reading at most maxDocument bytes of its body.
func get(ctx context.Context, hc *http.Client, u string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	return body, resp.StatusCode, err
}

// Answers reports whether anything answers at u, with any HTTP status,
// and which (for a report).
func Answers(ctx context.Context, hc *http.Client, u string) (int, error) {
	_, status, err := get(ctx, hc, u)
	return status, err
}

// NetworkReason is a network error without the request's URL, which the
// caller names itself, for a report.
func NetworkReason(err error) string {
	var ue *url.Error
	switch {
	case err == nil:
		return "no answer"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the timeout"
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

// Reachability is what a provider has learnt about reaching its IdP.
type Reachability int

const (
	// ReachUnknown: not tried yet, or nothing to learn from (a plain
	// OAuth2 provider has nothing to discover).
	ReachUnknown Reachability = iota
	// ReachOK: the IdP answered once (an OpenID provider was discovered),
	// or there is no IdP to reach (a local provider with its users loaded).
	ReachOK
	// ReachFailed: the last attempt failed, and the provider waits before
	// it tries again.
	ReachFailed
)

// Reacher is the optional capability of a provider that knows how to
// reach its IdP (or directory) for the readiness check, found by type
// assertion: KnownReachability and Reach use it. Every provider of the
// broker's types has it.
type Reacher interface {
	// Reachability is what the provider has learnt; it never blocks.
	Reachability() Reachability
	// Reach asks the IdP once whether it answers now; the error names the
	// provider.
	Reach(ctx context.Context) error
}

// KnownReachability reports what p has learnt about reaching its IdP. It
// never blocks, makes no network call and, unlike Status, starts no
// discovery. A provider from elsewhere is judged by its Status.
func KnownReachability(p Provider) Reachability {
	if r, ok := p.(Reacher); ok {
		return r.Reachability()
	}
	if p.Status().Available {
		return ReachOK
	}
	return ReachFailed
}

// Reach asks p's IdP, with one request and p's HTTP client, whether it
// answers now: an OpenID provider must serve its discovery document with
// its issuer (fetched as discovery does); a plain OAuth2 provider's token
// endpoint must give any HTTP answer; a local provider needs its users
// loaded. It leaves p's own state alone. A provider from elsewhere is
// judged by its Status. The error names the provider.
func Reach(ctx context.Context, p Provider) error {
	if r, ok := p.(Reacher); ok {
		return r.Reach(ctx)
	}
	if st := p.Status(); !st.Available {
		return fmt.Errorf("providers: %s: %s", p.ID(), st.Reason)
	}
	return nil
}

func (p *oidcProvider) Reachability() Reachability {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.client != nil:
		return ReachOK
	case p.lastErr != nil && p.opts.Now().Before(p.retryAt):
		return ReachFailed
	}
	return ReachUnknown
}

func (p *oidcProvider) Reach(ctx context.Context) error {
	hc := observedClient(p.opts, p.cfg.ID, p.opts.HTTPClient, map[string]string{p.discoveryURL(): EndpointDiscovery})
	if err := fetchDiscovery(ctx, p.cfg.Issuer, p.discoveryURL(), hc).err; err != nil {
		return fmt.Errorf("providers: %s: discovery: %w", p.cfg.ID, err)
	}
	return nil
}

func (p *oauth2Provider) Reachability() Reachability { return ReachUnknown }

func (p *oauth2Provider) Reach(ctx context.Context) error {
	// Not observed: a GET to a token endpoint is answered 4xx by design,
	// which the metrics would count as a failed token request.
	if _, err := Answers(ctx, p.opts.HTTPClient, p.cfg.TokenEndpoint); err != nil {
		return fmt.Errorf("providers: %s: token_endpoint: %w", p.cfg.ID, err)
	}
	return nil
}
