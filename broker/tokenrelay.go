package broker

import (
	"fmt"
	"net/http"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/upstream"
)

// The user's tokens to the apps that ask for them (docs/headers.md#tokens):
// an upstream, or forward-auth (globally or for some hosts), may receive
// the signed-in user's access token, to call APIs on the user's behalf,
// and the ID token. Opt-in per app; never logged; renewed before they
// expire (refresh.go runs before the access decision); a client's headers
// of the configured names are stripped when its request arrives (entry),
// so an app that did not ask never gets one, and an app that did gets
// only the broker's.

// TokenRelay is which of the user's tokens an app receives, and in which
// header (upstream.Tokens): upstreams[].pass_access_token, pass_id_token,
// and forward_auth's.
type TokenRelay = upstream.Tokens

// ForwardAuthConfig is what forward-auth answers besides the identity.
type ForwardAuthConfig struct {
	// The tokens the 202 answer carries, for the proxy to pass on to the
	// app (nginx: auth_request_set and proxy_set_header; Traefik:
	// authResponseHeaders; Caddy: copy_headers).
	TokenRelay `yaml:",inline"`
	// Hosts, when set, limits the tokens to the requests for these hosts
	// (the apps that asked; exact, or .example.com for a domain), as the
	// proxy describes them. Default: every request.
	Hosts []string `yaml:"hosts"`
}

// keptAccessToken is tok when an app asks for access tokens (it is then
// kept in the session), "" otherwise: sessions stay small.
func (s *Server) keptAccessToken(tok string) string {
	if s.cfg.ForwardAuth.PassAccessToken != "" {
		return tok
	}
	for _, u := range s.cfg.upstreamConfigs() {
		if u.PassAccessToken != "" {
			return tok
		}
	}
	return ""
}

// tokenHeaderNames are the configured header names that carry tokens,
// other than Authorization: stripped from every client request.
func (c Config) tokenHeaderNames() []string {
	names := c.ForwardAuth.HeaderNames()
	for _, u := range c.upstreamConfigs() {
		names = append(names, u.Tokens.HeaderNames()...)
	}
	return names
}

// tokenRelayProblems checks the token headers; each message names the
// field.
func (c Config) tokenRelayProblems() []error {
	errs := c.ForwardAuth.Problems("forward_auth.", c.Assertion.Header)
	for i, h := range c.ForwardAuth.Hosts {
		if _, err := access.ParseHostPattern(h); err != nil {
			errs = append(errs, fmt.Errorf("forward_auth.hosts[%d]: %q %w", i, h, err))
		}
	}
	for i, u := range c.Upstreams {
		errs = append(errs, u.Tokens.Problems(fmt.Sprintf("upstreams[%d].", i), c.Assertion.Header)...)
	}
	return errs
}

// setTokens writes the tokens t asks for into h (the upstream request's,
// or forward-auth's answer): the caller's bearer token or the session's
// tokens, the access token only while it is valid.
func (s *Server) setTokens(h http.Header, r *http.Request, t TokenRelay) {
	accessToken, idToken := s.requestTokens(r)
	t.Set(h, accessToken, idToken)
}

// requestTokens are the request's access and ID tokens: an API client's
// bearer token, or its session's, read where entry read the session; the
// access token "" once it expired (a refresh that failed).
func (s *Server) requestTokens(r *http.Request) (accessToken, idToken string) {
	ctx := r.Context()
	if c, ok := ctx.Value(bearerKey{}).(*bearerCredential); ok {
		return c.token, ""
	}
	if ctx.Value(basicIdentityKey{}) != nil { // HTTP Basic: no tokens
		return "", ""
	}
	var t session.Tokens
	var ok bool
	if info := requestInfoFrom(ctx); info != nil && info.readOnly {
		if info.peeked == nil {
			return "", ""
		}
		t, ok = info.peeked.Tokens(), true
	} else {
		t, ok = s.sessions.Tokens(ctx)
	}
	if !ok {
		return "", ""
	}
	accessToken = t.AccessToken
	if !t.Expiry.IsZero() && !s.now().Before(t.Expiry) {
		accessToken = ""
	}
	return accessToken, t.IDToken
}

// forwardAuthTokens reports whether forward-auth's answer to r, about the
// described host, carries tokens (forward_auth.hosts): only to a trusted
// proxy, the direct peer in trusted_proxies.from. Any other caller (a
// page's script calling fetch('/oauth2/auth') on the broker's origin)
// gets the identity, never the tokens.
func (s *Server) forwardAuthTokens(r *http.Request, host string) bool {
	if !s.cfg.ForwardAuth.Enabled() || !s.fix.PeerListed(r) {
		return false
	}
	if len(s.cfg.ForwardAuth.Hosts) == 0 {
		return true
	}
	return host != "" && hostAllowed(s.tokenHosts, host)
}
