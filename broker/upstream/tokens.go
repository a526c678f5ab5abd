package upstream

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/relay"
)

// The user's tokens to the apps that ask for them (docs/headers.md#tokens):
// which headers a Tokens setting may name, and how the tokens are written
// into them. Which tokens a request has is the broker's business (the
// session, or an API client's bearer token).

// HeaderNames are the header names t sets, other than Authorization: the
// broker strips them from every client request.
func (t Tokens) HeaderNames() []string {
	var names []string
	for _, n := range []string{t.PassAccessToken, t.PassIDToken} {
		if n != "" && !strings.EqualFold(n, "Authorization") {
			names = append(names, n)
		}
	}
	return names
}

// Problems checks t's header names; each message starts with field (such
// as "upstreams[0].") and names the key. assertionHeader is the signed
// assertion's header, which no token may take.
func (t Tokens) Problems(field, assertionHeader string) []error {
	var errs []error
	for _, f := range []struct{ key, name string }{{"pass_access_token", t.PassAccessToken}, {"pass_id_token", t.PassIDToken}} {
		if f.name == "" {
			continue
		}
		if err := tokenHeaderProblem(f.name, assertionHeader); err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %q %w", field, f.key, f.name, err))
		}
	}
	if t.PassAccessToken != "" && strings.EqualFold(t.PassAccessToken, t.PassIDToken) {
		errs = append(errs, fmt.Errorf("%spass_id_token: %q is already the access token's header", field, t.PassIDToken))
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
	case relay.MatchesAnyHeader(name, reserved), IsForwardingHeader(name):
		return fmt.Errorf("is a header HTTP or the proxies give another meaning")
	case relay.MatchesAnyHeader(name, identityHeaderNames[:]):
		return fmt.Errorf("is one of the identity headers")
	case assertionHeader != "" && relay.MatchesAnyHeader(name, []string{assertionHeader}):
		return fmt.Errorf("is the assertion's header")
	}
	return nil
}

var identityHeaderNames = [...]string{relay.HeaderUser, relay.HeaderEmail, relay.HeaderPreferredUsername, relay.HeaderGroups,
	relay.HeaderProvider, relay.HeaderName, relay.HeaderGroupsIncomplete}

// Set writes the tokens t asks for into h (the upstream request's, or
// forward-auth's answer), replacing any of the client's: accessToken ""
// (none, or expired) and idToken "" leave their header absent.
func (t Tokens) Set(h http.Header, accessToken, idToken string) {
	if t.PassAccessToken != "" {
		setToken(h, t.PassAccessToken, accessToken)
	}
	if t.PassIDToken != "" {
		setToken(h, t.PassIDToken, idToken)
	}
}

// Clear removes the headers t names from h: an anonymous request's (public
// route) carry none of the client's in their place.
func (t Tokens) Clear(h http.Header) {
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
