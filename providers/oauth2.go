package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// oauth2Provider is a plain OAuth 2.0 provider (RFC 6749) without ID tokens,
// such as GitHub. It has no nonce: the broker's state (single-use, bound to
// this provider, server-side) and PKCE protect the flow, and the identity
// comes from the configured user API through the claims mapping. Emails are
// unverified unless the API says email_verified: true, or the configuration
// insists (InsecureAssumeEmailVerified).
type oauth2Provider struct {
	cfg    Config
	opts   Options
	conf   *oauth2.Config
	mapper mapper
	hc     *http.Client // Options.HTTPClient, observed (Options.Observe)
	hooks  Hooks        // a preset's extra steps (hooks.go, package presets)
}

var _ Provider = (*oauth2Provider)(nil)

func openOAuth2(cfg Config, opts Options) Provider {
	return newOAuth2Provider(cfg, Hooks{}, opts)
}

func newOAuth2Provider(cfg Config, hooks Hooks, opts Options) *oauth2Provider {
	return &oauth2Provider{
		cfg:   cfg,
		opts:  opts,
		hooks: hooks,
		conf: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Scopes:       cfg.RequestedScopes(),
			Endpoint: oauth2.Endpoint{AuthURL: cfg.AuthorizationEndpoint, TokenURL: cfg.TokenEndpoint,
				AuthStyle: authStyle(cfg.authMethod())},
		},
		mapper: mapper{provider: cfg.ID, cfg: withUserinfoSource(cfg.Claims), log: opts.Logger},
		hc: observedClient(opts, cfg.ID, guardedClient(opts.HTTPClient),
			map[string]string{cfg.TokenEndpoint: EndpointToken, cfg.UserinfoEndpoint: EndpointUserinfo}),
	}
}

// withUserinfoSource reads claims from the user API: there is no ID token.
func withUserinfoSource(c ClaimsConfig) ClaimsConfig {
	c.Source = SourceUserinfo
	return c
}

func (p *oauth2Provider) ID() string   { return p.cfg.ID }
func (p *oauth2Provider) Name() string { return p.cfg.DisplayName() }

// Status: nothing is discovered, so the provider is always usable as far as
// the broker can tell.
func (p *oauth2Provider) Status() Status { return Status{Available: true} }

// AuthCodeURL implements Provider. The nonce is not sent: a plain OAuth2
// server would ignore it and has no ID token to bind it to.
func (p *oauth2Provider) AuthCodeURL(_ context.Context, req AuthRequest) (string, error) {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(req.Verifier), oauth2.SetAuthURLParam("redirect_uri", req.RedirectURI)}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", req.LoginHint))
	}
	for k, v := range p.cfg.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return p.conf.AuthCodeURL(req.State, opts...), nil
}

// Exchange implements Provider: the iss check when an issuer is configured
// (RFC 9207 applies to OAuth 2.0 servers too), the error response, the code
// with the PKCE verifier, then the user API.
func (p *oauth2Provider) Exchange(ctx context.Context, cb Callback) (*Result, error) {
	if iss, present := cb.Params.Get("iss"), cb.Params.Has("iss"); (present && iss != p.cfg.Issuer) || (!present && p.cfg.RequireIssParameter) {
		return nil, ErrIssuerMismatch
	}
	if code := cb.Params.Get("error"); code != "" {
		return nil, &AuthError{Code: code, Description: cb.Params.Get("error_description")}
	}
	code := cb.Params.Get("code")
	if code == "" {
		return nil, ErrMissingCode
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.hc)
	tok, err := p.conf.Exchange(ctx, code, oauth2.VerifierOption(cb.Verifier), oauth2.SetAuthURLParam("redirect_uri", cb.RedirectURI))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return nil, &TokenError{Code: re.ErrorCode, Description: re.ErrorDescription}
		}
		return nil, fmt.Errorf("providers: %s: code exchange: %w", p.cfg.ID, err)
	}
	info, err := p.userAPI(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("providers: %s: user API: %w", p.cfg.ID, err)
	}
	id := p.mapper.identity(nil, info)
	if id.Subject == "" {
		return nil, fmt.Errorf("providers: %s: the user API has no %q to identify the user", p.cfg.ID, or(p.cfg.Claims.Subject, "sub"))
	}
	if p.hooks.Complete != nil {
		cctx, cancel := context.WithTimeout(ctx, CompleteTimeout)
		err := p.hooks.Complete(cctx, Login{HTTPClient: p.hc, AccessToken: tok.AccessToken}, &id)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	id.AuthTime = p.opts.Now()
	// No ID token: no auth_time or acr, so a step-up cannot be verified.
	if err := CheckStepUp(id, cb.MaxAge, cb.ACRValues, p.opts.Now()); err != nil {
		return nil, err
	}
	return &Result{Identity: id, Expiry: tok.Expiry, RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken}, nil
}

// userAPI reads the user's claims as JSON with the access token.
func (p *oauth2Provider) userAPI(ctx context.Context, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.UserinfoEndpoint, nil)
	if err != nil {
		return nil, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxUserinfo))
	dec.UseNumber() // numeric ids beyond 2^53 stay exact
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	return claims, nil
}
