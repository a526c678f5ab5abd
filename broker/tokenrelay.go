package broker

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/relay"
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
	var names []string
	add := func(t TokenRelay) {
		for _, n := range []string{t.PassAccessToken, t.PassIDToken} {
			if n != "" && !strings.EqualFold(n, "Authorization") {
				names = append(names, n)
			}
		}
	}
	add(c.ForwardAuth.TokenRelay)
	for _, u := range c.upstreamConfigs() {
		add(u.Tokens)
	}
	return names
}

// tokenRelayProblems checks the token headers; each message names the
// field.
func (c Config) tokenRelayProblems() []error {
	var errs []error
	check := func(field string, t TokenRelay) {
		for _, f := range []struct{ key, name string }{{"pass_access_token", t.PassAccessToken}, {"pass_id_token", t.PassIDToken}} {
			if f.name == "" {
				continue
			}
			if err := tokenHeaderProblem(f.name, c.Assertion.Header); err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %q %w", field, f.key, f.name, err))
			}
		}
		if t.PassAccessToken != "" && strings.EqualFold(t.PassAccessToken, t.PassIDToken) {
			errs = append(errs, fmt.Errorf("%spass_id_token: %q is already the access token's header", field, t.PassIDToken))
		}
	}
	check("forward_auth.", c.ForwardAuth.TokenRelay)
	for i, h := range c.ForwardAuth.Hosts {
		if _, err := access.ParseHostPattern(h); err != nil {
			errs = append(errs, fmt.Errorf("forward_auth.hosts[%d]: %q %w", i, h, err))
		}
	}
	for i, u := range c.Upstreams {
		check(fmt.Sprintf("upstreams[%d].", i), u.Tokens)
	}
	return errs
}

// tokenHeaderProblem refuses a header name that is no HTTP token, or one
// the broker or HTTP itself gives another meaning.
func tokenHeaderProblem(name, assertionHeader string) error {
	for _, c := range []byte(name) {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("must be a header name (letters, digits, '-')")
		}
	}
	reserved := []string{"Cookie", "Set-Cookie", "Host", "Connection", "Upgrade", "Content-Length", "Content-Type",
		"Transfer-Encoding", "Te", "Trailer", "Keep-Alive", "Proxy-Authorization", "Location", "Www-Authenticate"}
	switch {
	case name == "" || len(name) > 64:
		return fmt.Errorf("must be a header name of at most 64 characters")
	case relay.MatchesAnyHeader(name, reserved), upstream.IsForwardingHeader(name):
		return fmt.Errorf("is a header HTTP or the proxies give another meaning")
	case relay.MatchesAnyHeader(name, identityHeaderNames[:]):
		return fmt.Errorf("is one of the identity headers")
	case assertionHeader != "" && relay.MatchesAnyHeader(name, []string{assertionHeader}):
		return fmt.Errorf("is the assertion's header")
	}
	return nil
}

var identityHeaderNames = [...]string{HeaderUser, HeaderEmail, HeaderPreferredUsername, HeaderGroups, HeaderProvider,
	HeaderName, HeaderGroupsIncomplete}

// setTokens writes the tokens t asks for into h (the upstream request's,
// or forward-auth's answer): the caller's bearer token or the session's
// tokens, the access token only while it is valid.
func (s *Server) setTokens(h http.Header, r *http.Request, t TokenRelay) {
	access, idToken := s.requestTokens(r)
	if t.PassAccessToken != "" {
		setToken(h, t.PassAccessToken, access)
	}
	if t.PassIDToken != "" {
		setToken(h, t.PassIDToken, idToken)
	}
}

// clearTokens removes the headers t names from h: an anonymous request's
// (public route) carry none of the client's in their place.
func clearTokens(h http.Header, t TokenRelay) {
	for _, name := range []string{t.PassAccessToken, t.PassIDToken} {
		if name != "" {
			h.Del(name)
		}
	}
}

func setToken(h http.Header, name, token string) {
	if strings.EqualFold(name, "Authorization") {
		h.Del("Authorization")
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return
	}
	h.Del(name)
	if token != "" {
		h.Set(name, token)
	}
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
