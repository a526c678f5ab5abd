package broker

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/upstream"
)

// serveUpstream proxies a request the access rules let through (guard) to
// the matching upstream, with the identity headers when someone is signed
// in. The rules run before the upstream is chosen, so an anonymous client
// learns nothing about which paths exist.
func (s *Server) serveUpstream(w http.ResponseWriter, r *http.Request) {
	if s.upstreams.Len() == 0 {
		if r.URL.Path != "/" {
			s.handleNotFound(w, r)
			return
		}
		http.Redirect(w, r, s.originOf(r).Path("/oauth2/userinfo"), http.StatusFound)
		return
	}
	up := s.upstreams.Match(r)
	if up == nil {
		s.handleNotFound(w, r)
		return
	}
	// Save the session now: a protocol switch (WebSocket) hijacks the
	// connection, and its 101 never passes through WriteHeader.
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, r, err)
		return
	}
	r, done, ok := s.trackTunnel(w, r) // tunnels.go: a WebSocket ends with its session
	if !ok {
		return
	}
	defer done()
	up.ServeHTTP(w, r)
}

// needSignIn answers a request that needs a signed-in user: a browser goes
// to the sign-in page (and back afterwards), an API client gets 401 with
// JSON that names the sign-in page (signInRequired).
func (s *Server) needSignIn(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	rd := s.requestedRD(r)
	if wantsRedirect(r) {
		http.Redirect(w, r, o.Path("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd), http.StatusFound)
		return
	}
	signInRequired(w, o.URL("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd), s.bearer != nil)
}

// sessionChallenge is the WWW-Authenticate of a 401 for want of a session.
// RFC 9110 section 11.6.1 wants a challenge in every 401; it names the
// scheme the broker always uses, a cookie session obtained by signing in
// (the "Cookie" scheme of draft-broyer-http-cookie-auth), followed by
// "Bearer" only when a provider accepts API clients' access tokens
// (bearerChallenge): otherwise it would advertise tokens the broker does
// not accept. Not Basic, even on a Basic path: a browser would answer a
// page's fetch with a password dialog instead of letting the page send the
// user to sign in.
const sessionChallenge = `Cookie realm="oidc-broker"`

// signInRequired writes the 401 an API client gets when nobody is signed
// in: JSON that names the sign-in page (signIn, an absolute URL on the
// broker's own origin, with rd), so that a page whose session ended can
// send the browser there (docs/flask.md has the script). bearer adds the
// Bearer challenge.
func signInRequired(w http.ResponseWriter, signIn string, bearer bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("WWW-Authenticate", sessionChallenge)
	if bearer {
		h.Add("WWW-Authenticate", bearerChallenge)
	}
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(struct {
		Error     string `json:"error"`
		SignInURL string `json:"sign_in_url"`
	}{"not signed in", signIn})
}

// wantsRedirect tells a browser navigation from an API call: only a GET or
// HEAD that does not ask for JSON and does not ask to switch protocols
// (a WebSocket, which cannot follow a redirect) is sent to the sign-in
// page.
func wantsRedirect(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	return !strings.Contains(r.Header.Get("Accept"), "application/json")
}

// newUpstreams builds the upstreams of this generation (package
// upstream), with what their reverse proxy relays: the external origin as
// originOf established it, the identity of a signed-in request
// (relayIdentity), the request ID; the broker's own session and browser
// binding cookies are never passed on.
func (s *Server) newUpstreams(cfgs []UpstreamConfig) *upstream.Set {
	base := s.sessions.BaseName()
	return upstream.New(cfgs, upstream.Relay{
		Origin: func(r *http.Request) upstream.Origin {
			o := s.originOf(r)
			return upstream.Origin{Scheme: o.Scheme, Host: o.Host, Port: o.port(), Prefix: o.Prefix}
		},
		Identity: func(h http.Header, r *http.Request, audience string) {
			if id, signedIn := IdentityFrom(r.Context()); signedIn {
				s.relayIdentity(h, r, id, audience)
			}
		},
		Tokens: func(h http.Header, r *http.Request, t upstream.Tokens) {
			if _, signedIn := IdentityFrom(r.Context()); signedIn {
				s.setTokens(h, r, t) // tokenrelay.go
				return
			}
			clearTokens(h, t) // an anonymous client's own header (Authorization) never reaches an app that asked for a token in it
		},
		RequestIDHeader: http.CanonicalHeaderKey(cmp.Or(s.cfg.Log.RequestIDHeader, DefaultRequestIDHeader)),
		Cookies:         []string{base, base + pending.BindingSuffix},
		Failed: func(w http.ResponseWriter, r *http.Request, target string, err error) {
			s.logAnonymous(r.Context(), slog.LevelWarn, "upstream error", "upstream", target, "error", err)
			s.renderError(w, r, errorPage{Status: http.StatusBadGateway, Title: "app_unavailable_title", Message: "app_unavailable",
				API: !wantsRedirect(r)})
		},
	})
}
