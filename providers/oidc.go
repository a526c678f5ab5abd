package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Options are the seams shared by the providers of one registry.
type Options struct {
	// HTTPClient is used for every call to the IdPs (discovery, JWKS, token,
	// userinfo). Default: a client with a 10 s timeout whose transport keeps
	// up to 64 idle connections per IdP host for reuse (transport.go).
	HTTPClient *http.Client
	// Logger receives provider events. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock for backoff decisions. Default: time.Now.
	Now func() time.Time
	// DiscoveryTimeout bounds one discovery attempt. Default: 10 s.
	DiscoveryTimeout time.Duration
	// JWKSMinInterval is the shortest time between two fetches of an IdP's
	// JWKS. A token with an unknown kid (key rotation, or an attacker's
	// random kid) triggers at most one fetch per interval. Default: 10 s.
	JWKSMinInterval time.Duration
	// Observe, when set, is called after every HTTP request a provider
	// makes to its IdP (metrics; see IdPCall). It must be safe for
	// concurrent use and return quickly.
	Observe func(IdPCall)

	// warmSlots bounds the background discoveries that Status starts, for
	// all providers of a registry together (NewRegistry sets it).
	warmSlots chan struct{}
}

// maxWarming is how many background discoveries a registry runs at once:
// a sign-in page listing 1,000 undiscovered providers must not start 1,000
// requests at the same moment.
const maxWarming = 8

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: defaultTransport()}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DiscoveryTimeout <= 0 {
		o.DiscoveryTimeout = 10 * time.Second
	}
	if o.JWKSMinInterval <= 0 {
		o.JWKSMinInterval = 10 * time.Second
	}
	return o
}

// Background runs fn in a goroutine of its own if one of the registry's
// background slots is free, and reports whether it did. A provider's
// Status starts its checks of the IdP (or directory) this way, so that a
// sign-in page listing many providers does not start as many requests at
// once (at most maxWarming for a registry and those Update makes from it).
func (o Options) Background(fn func()) bool {
	if !takeSlot(o.warmSlots) {
		return false
	}
	go func() {
		defer releaseSlot(o.warmSlots)
		fn()
	}()
	return true
}

func takeSlot(slots chan struct{}) bool {
	if slots == nil {
		return true
	}
	select {
	case slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func releaseSlot(slots chan struct{}) {
	if slots != nil {
		<-slots
	}
}

// Backoff bounds for failed discovery.
const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
)

// Provider types, the values of Config.Type.
const (
	TypeOIDC   = "oidc"
	TypeOAuth2 = "oauth2"
	TypeLocal  = "local"
	TypeLDAP   = "ldap"
)

func openOIDC(cfg Config, opts Options) Provider { return newOIDCProvider(cfg, Hooks{}, opts) }

func newOIDCProvider(cfg Config, hooks Hooks, opts Options) *oidcProvider {
	return &oidcProvider{cfg: cfg, opts: opts, hooks: hooks,
		mapper: mapper{provider: cfg.ID, cfg: cfg.Claims, log: opts.Logger, overageResolved: hooks.ResolvesOverage}}
}

// oidcProvider is a generic OpenID Connect relying party for one IdP.
type oidcProvider struct {
	cfg    Config
	opts   Options
	mapper mapper
	hooks  Hooks // a preset's extra steps (hooks.go, package presets)

	mu       sync.Mutex
	client   *oidcClient   // set once discovery succeeded
	attempt  chan struct{} // closed when the running discovery attempt ends
	lastErr  error
	failures int
	retryAt  time.Time
}

var _ Provider = (*oidcProvider)(nil)

// oidcClient is the state that discovery produces.
type oidcClient struct {
	rp rp.RelyingParty
	// issParameter is the RFC 9207 discovery flag
	// authorization_response_iss_parameter_supported, which zitadel's
	// DiscoveryConfiguration does not carry.
	issParameter bool
	// introspectionURL is the discovery document's
	// introspection_endpoint (RFC 8414), "" when it names none.
	introspectionURL string
}

func (p *oidcProvider) ID() string   { return p.cfg.ID }
func (p *oidcProvider) Name() string { return p.cfg.DisplayName() }

// Status never blocks. A provider not yet discovered counts as available and
// gets a discovery attempt in the background when a slot is free, so the
// selection page learns about a dead IdP without making anyone wait for it.
func (p *oidcProvider) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.client != nil:
		return Status{Available: true}
	case p.lastErr != nil && p.opts.Now().Before(p.retryAt):
		return Status{Reason: "unreachable, retrying shortly"}
	}
	if p.attempt == nil && takeSlot(p.opts.warmSlots) {
		done := p.startAttemptLocked()
		go func() { <-done; releaseSlot(p.opts.warmSlots) }()
	}
	if p.lastErr != nil {
		return Status{Reason: "unreachable, retrying now"}
	}
	return Status{Available: true}
}

// AuthCodeURL implements Provider.
func (p *oidcProvider) AuthCodeURL(ctx context.Context, req AuthRequest) (string, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return "", err
	}
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(oidc.NewSHACodeChallenge(req.Verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", req.Nonce)),
		rp.AuthURLOpt(rp.WithURLParam("redirect_uri", req.RedirectURI)),
	}
	if req.LoginHint != "" {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("login_hint", req.LoginHint)))
	}
	for k, v := range p.cfg.AuthParams {
		if (k == "prompt" && req.MaxAge != nil) || (k == "max_age" && req.MaxAge != nil) || (k == "acr_values" && len(req.ACRValues) > 0) {
			continue // the step-up's own
		}
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam(k, v)))
	}
	opts = append(opts, stepUpParams(req)...)
	return rp.AuthURL(req.State, c.rp, opts...), nil
}

// Exchange implements Provider. The order matters: the `iss` parameter is
// checked before anything else (RFC 9207 §2.4, also for error responses),
// and the code is redeemed only once the response is known to come from
// this provider.
func (p *oidcProvider) Exchange(ctx context.Context, cb Callback) (*Result, error) {
	c, err := p.discovered(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.checkIss(c, cb); err != nil {
		return nil, err
	}
	if code := cb.Params.Get("error"); code != "" {
		return nil, &AuthError{Code: code, Description: cb.Params.Get("error_description")}
	}
	code := cb.Params.Get("code")
	if code == "" {
		return nil, ErrMissingCode
	}
	ctx = context.WithValue(ctx, nonceKey{}, cb.Nonce)
	exchangeOpts := []rp.CodeExchangeOpt{rp.WithCodeVerifier(cb.Verifier), withRedirectURI(cb.RedirectURI)}
	if signer := c.rp.Signer(); signer != nil {
		// private_key_jwt (OpenID Connect Core §9): the audience is the
		// token endpoint, a fresh assertion per request.
		assertion, err := client.SignedJWTProfileAssertion(p.cfg.ClientID, []string{c.rp.OAuthConfig().Endpoint.TokenURL}, 2*time.Minute, signer)
		if err != nil {
			return nil, fmt.Errorf("providers: %s: client assertion: %w", p.cfg.ID, err)
		}
		exchangeOpts = append(exchangeOpts, rp.WithClientAssertionJWT(assertion))
	}
	tokens, err := rp.CodeExchange[*idClaims](ctx, code, c.rp, exchangeOpts...) // idclaims.go
	if errors.Is(err, rp.ErrMissingIDToken) {
		return nil, ErrMissingIDToken
	}
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return nil, &TokenError{Code: re.ErrorCode, Description: re.ErrorDescription}
		}
		return nil, fmt.Errorf("providers: %s: code exchange: %w", p.cfg.ID, err)
	}
	// zitadel checks at_hash; c_hash only appears in hybrid-flow tokens,
	// but when an IdP includes it, it must match (OpenID Connect Core §3.3.2.11).
	if ch := tokens.IDTokenClaims.cHash; ch != "" {
		want, err := oidc.ClaimHash(code, tokens.IDTokenClaims.GetSignatureAlgorithm())
		if err != nil || want != ch {
			return nil, fmt.Errorf("providers: %s: %w", p.cfg.ID, ErrCodeHash)
		}
	}
	claims := tokens.IDTokenClaims.claims
	var info map[string]any
	if p.wantsUserinfo(c, claims) {
		info, err = p.userinfo(ctx, c, tokens.AccessToken, tokens.TokenType, tokens.IDTokenClaims.GetSubject())
		if err != nil {
			return nil, fmt.Errorf("providers: %s: userinfo: %w", p.cfg.ID, err)
		}
	}
	id := p.mapper.identity(claims, info)
	if err := p.complete(ctx, tokens.AccessToken, claims, &id); err != nil {
		return nil, err
	}
	id.AuthTime = p.opts.Now()
	id.AuthnTime = tokens.IDTokenClaims.GetAuthTime().UTC()
	if tokens.IDTokenClaims.authTime == 0 {
		id.AuthnTime = time.Time{}
	}
	id.ACR = tokens.IDTokenClaims.acr
	if err := CheckStepUp(id, cb.MaxAge, cb.ACRValues, p.opts.Now()); err != nil {
		return nil, err
	}
	return &Result{
		Identity:     id,
		IDToken:      tokens.IDToken,
		AccessToken:  tokens.AccessToken,
		RefreshToken: tokens.RefreshToken,
		SessionID:    tokens.IDTokenClaims.sid,
		Expiry:       expiryOf(tokens.Expiry, tokens.IDTokenClaims.GetExpiration()), // refresh.go
	}, nil
}

// issuerOK judges an issuer the IdP states (an ID token's is judged by
// zitadel's verifier, set up with the same hook): equal to the provider's,
// or as the preset's iss hook accepts it.
func (p *oidcProvider) issuerOK(c *oidcClient, iss string) bool {
	if p.hooks.Issuer != nil {
		return p.hooks.Issuer(iss) == nil
	}
	return iss == c.rp.Issuer()
}

func (p *oidcProvider) checkIss(c *oidcClient, cb Callback) error {
	iss, present := cb.Params.Get("iss"), cb.Params.Has("iss")
	switch {
	case present && !p.issuerOK(c, iss):
		return ErrIssuerMismatch
	case !present && (c.issParameter || p.cfg.RequireIssParameter):
		return ErrIssuerMismatch
	}
	return nil
}

// wantsUserinfo says whether to call userinfo after a code exchange or a
// refresh. idToken holds the claims of an ID token the IdP has just issued
// (nil when it issued none). With "auto" (the default) the call is made
// when the IdP publishes the endpoint and the mapping may find something
// there: not for claims.source id_token, and not when that ID token already
// carries every claim the mapping reads (mapper.carriesAll). The call is a
// round trip to the IdP on every login; "always" makes it anyway.
func (p *oidcProvider) wantsUserinfo(c *oidcClient, idToken map[string]any) bool {
	switch p.cfg.Userinfo {
	case "never":
		return false
	case "always":
		return true
	}
	if c.rp.UserinfoEndpoint() == "" {
		return false
	}
	switch p.cfg.Claims.Source {
	case SourceIDToken:
		return false
	case SourceUserinfo:
		return true
	}
	return !p.mapper.carriesAll(idToken)
}

// discovered returns the discovered client, running discovery if needed.
// Concurrent callers share one attempt; during backoff they fail at once.
func (p *oidcProvider) discovered(ctx context.Context) (*oidcClient, error) {
	p.mu.Lock()
	if p.client != nil {
		c := p.client
		p.mu.Unlock()
		return c, nil
	}
	if p.lastErr != nil && p.opts.Now().Before(p.retryAt) {
		err := &UnavailableError{Provider: p.cfg.ID, RetryAfter: p.retryAt, Err: p.lastErr}
		p.mu.Unlock()
		return nil, err
	}
	done := p.startAttemptLocked()
	p.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return nil, &UnavailableError{Provider: p.cfg.ID, Err: ctx.Err()}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	return nil, &UnavailableError{Provider: p.cfg.ID, RetryAfter: p.retryAt, Err: p.lastErr}
}

// startAttemptLocked starts a discovery attempt unless one is running and
// returns the channel closed when it ends. p.mu must be held.
func (p *oidcProvider) startAttemptLocked() chan struct{} {
	if p.attempt != nil {
		return p.attempt
	}
	done := make(chan struct{})
	p.attempt = done
	go func() {
		// Detached from any request: a client hanging up must not make the
		// attempt fail for everyone waiting on it.
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.DiscoveryTimeout)
		defer cancel()
		c, err := p.discover(ctx)

		p.mu.Lock()
		if err == nil {
			p.client, p.lastErr, p.failures = c, nil, 0
			p.opts.Logger.Info("provider discovered", "provider", p.cfg.ID, "issuer", p.cfg.Issuer)
		} else {
			p.failures++
			wait := min(minBackoff<<min(p.failures-1, 20), maxBackoff)
			p.lastErr, p.retryAt = err, p.opts.Now().Add(wait)
			p.opts.Logger.Warn("provider discovery failed", "provider", p.cfg.ID, "issuer", p.cfg.Issuer,
				"error", err, "failures", p.failures, "retry_in", wait)
		}
		p.attempt = nil
		p.mu.Unlock()
		close(done)
	}()
	return done
}

// discover builds the zitadel relying party. zitadel fetches the discovery
// document itself; the provider's transport keeps a copy of the response so
// the RFC 9207 flag can be read without a second request, and rate-limits
// JWKS fetches (see idpTransport).
func (p *oidcProvider) discover(ctx context.Context) (*oidcClient, error) {
	wellKnown := p.discoveryURL()
	base := p.opts.HTTPClient
	observed := newObservedTransport(p.opts, p.cfg.ID, base.Transport, map[string]string{wellKnown: EndpointDiscovery})
	tr := &idpTransport{base: guardBodies(observed), discoveryURL: wellKnown, now: p.opts.Now, jwksMinInterval: p.opts.JWKSMinInterval}
	hc := *base
	hc.Transport = tr

	verifierOpts := []rp.VerifierOption{rp.WithNonce(nonceFromContext)}
	if p.hooks.Issuer != nil {
		verifierOpts = append(verifierOpts, rp.WithISSVerifier(p.hooks.Issuer))
	}
	opts := []rp.Option{
		rp.WithHTTPClient(&hc),
		rp.WithAuthStyle(authStyle(p.cfg.authMethod())),
		rp.WithVerifierOpts(verifierOpts...),
	}
	if p.hooks.DiscoveryURL != "" {
		opts = append(opts, rp.WithCustomDiscoveryUrl(p.hooks.DiscoveryURL))
	}
	if p.cfg.authMethod() == AuthPrivateKeyJWT {
		key, err := loadPrivateKey(p.cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("providers: private_key_file: %w", err)
		}
		opts = append(opts, rp.WithJWTProfile(rp.SignerFromKeyAndKeyID(key, p.cfg.PrivateKeyID)))
	}
	relp, err := rp.NewRelyingPartyOIDC(ctx, p.cfg.Issuer, p.cfg.ClientID, p.cfg.ClientSecret, "", p.cfg.RequestedScopes(), opts...)
	if err != nil {
		return nil, err
	}
	meta, algs, err := readDiscovery(p.cfg, tr.discovery())
	if err != nil {
		return nil, err
	}
	// Set before the client is published; never changed afterwards.
	relp.IDTokenVerifier().SupportedSignAlgs = algs
	tr.setJWKSURL(meta.JWKSURI)
	observed.learn(map[string]string{meta.JWKSURI: EndpointJWKS, relp.OAuthConfig().Endpoint.TokenURL: EndpointToken,
		relp.UserinfoEndpoint(): EndpointUserinfo, meta.IntrospectionURI: EndpointIntrospection})
	return &oidcClient{rp: relp, issParameter: meta.IssParameter, introspectionURL: meta.IntrospectionURI}, nil
}

// discoveryURL is where the provider's discovery document is: under its
// issuer, unless a preset says otherwise.
func (p *oidcProvider) discoveryURL() string {
	return or(p.hooks.DiscoveryURL, discoveryURL(p.cfg.Issuer))
}

// discoveryURL is where an issuer's discovery document is (OpenID Connect
// Discovery §4), as zitadel's client.Discover builds it.
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + oidc.DiscoveryEndpoint
}

// discoveryMetadata is what the broker reads from a discovery document
// besides zitadel's DiscoveryConfiguration.
type discoveryMetadata struct {
	IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	Algs         []string `json:"id_token_signing_alg_values_supported"`
	JWKSURI      string   `json:"jwks_uri"`
	// IntrospectionURI is RFC 8414's introspection_endpoint.
	IntrospectionURI string `json:"introspection_endpoint"`
}

// readDiscovery reads doc, a discovery document, and picks the ID token
// algorithms the broker accepts from this IdP (signingAlgs); none is an
// error. Discovery and Probe both judge an IdP with it.
func readDiscovery(cfg Config, doc []byte) (discoveryMetadata, []string, error) {
	var meta discoveryMetadata
	if err := json.Unmarshal(doc, &meta); err != nil {
		return meta, nil, fmt.Errorf("providers: discovery document: %w", err)
	}
	algs := signingAlgs(cfg.IDTokenSigningAlgs, meta.Algs)
	if len(algs) == 0 {
		return meta, nil, fmt.Errorf("providers: the IdP advertises no asymmetric ID token algorithm we accept (it lists %s)", shortList(meta.Algs))
	}
	return meta, algs, nil
}

// signingAlgs picks the accepted ID token algorithms: the configured ones,
// or the IdP's asymmetric ones (RS256 when it lists none, per OpenID
// Connect Discovery §3).
func signingAlgs(configured, advertised []string) []string {
	if len(configured) > 0 {
		return configured
	}
	if len(advertised) == 0 {
		return []string{"RS256"}
	}
	var out []string
	for _, a := range advertised {
		if slices.Contains(asymmetricAlgs, a) {
			out = append(out, a)
		}
	}
	return out
}

func authStyle(method string) oauth2.AuthStyle {
	if method == AuthClientSecretBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

type nonceKey struct{}

func nonceFromContext(ctx context.Context) string {
	s, _ := ctx.Value(nonceKey{}).(string)
	return s
}

// stepUpParams are the authorization request parameters of a step-up
// (OpenID Connect Core §3.1.2.1): max_age with prompt=login, so that an
// IdP that ignores max_age still asks the user again, and acr_values.
func stepUpParams(req AuthRequest) []rp.AuthURLOpt {
	var opts []rp.AuthURLOpt
	if req.MaxAge != nil {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("max_age", strconv.FormatInt(int64(req.MaxAge.Seconds()), 10))),
			rp.AuthURLOpt(rp.WithURLParam("prompt", "login")))
	}
	if len(req.ACRValues) > 0 {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("acr_values", strings.Join(req.ACRValues, " "))))
	}
	return opts
}

// withRedirectURI sends the redirect_uri of this login at the token
// endpoint; it must equal the one in the authorization request (RFC 6749
// §4.1.3), and the broker builds it per request.
func withRedirectURI(uri string) rp.CodeExchangeOpt {
	return func() []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("redirect_uri", uri)}
	}
}
