package broker

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// handleAuth is the forward-auth endpoint (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth): 202 with the identity headers when the
// access rules allow the request, 401 when a sign-in is needed, 403 when the
// signed-in user is not allowed. The request the rules decide is the one
// the proxy describes in its headers, believed only from a trusted peer
// (describedTarget). See docs/access.md.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = noStoreValue[:1:1]
	id, pre, signedIn, err := s.requestIdentityHeaders(r)
	t := s.describedTarget(r)
	d, reason, up := s.rules.DecideStepUp(t.request(r.Header), identityPtr(id, signedIn))
	s.metrics.CountForwardAuth(d, err != nil)
	if err != nil && d != access.Public {
		s.sessionUnavailable(w, r, err)
		return
	}
	switch d {
	case access.Public, access.Allowed:
		if signedIn {
			s.relayWith(w.Header(), r, id, pre, "")
			if s.forwardAuthTokens(r, t.host) {
				s.setTokens(w.Header(), r, s.cfg.ForwardAuth.TokenRelay) // tokenrelay.go
			}
		}
		w.WriteHeader(http.StatusAccepted)
	case access.Forbidden:
		s.audit(r.Context(), auditEntry{event: audit.AccessDenied, user: id.User(), sub: id.Subject, reason: audit.Plain(reason),
			after: []any{"provider", id.Provider}, via: "forward_auth"})
		// Traefik and Caddy show this answer to the client; nginx shows it
		// with error_page 403 (docs/integrations.md). An API call (as the
		// described request's method and headers say) gets JSON.
		method := t.method
		if method == "" {
			method = r.Method
		}
		api := !wantsRedirect(&http.Request{Method: strings.ToUpper(method), Header: r.Header})
		s.denied(w, r, s.originOf(r), s.identityView(id), t.rd(s.originOf(r)), api, false)
	case access.StepUpNeeded:
		s.forwardAuthStepUp(w, r, t, id, up, reason) // stepup.go
	default:
		s.forwardAuthSignIn(w, r, t)
	}
}

// peeked is what quickAuth read of the session, for entry when it does not
// answer (done: read; then v, known and err are Manager.Peek's).
type peeked struct {
	done  bool
	v     *session.View
	known bool
	err   error
}

// quickAuth answers forward-auth's most frequent request, a signed-in
// session that the access rules allow, without entry's request state and
// copy of the request: it makes the same checks in the same order
// (the path, allowed_hosts, the session, the decision) and writes the same
// 202 as entry and handleAuth, straight to w: such an answer needs no
// request ID (requestlog.go), no session commit and no context for later
// handlers. It reports false, having written nothing, for everything else
// (entry goes on then, with what quickAuth read of the session in p, so
// that the store is asked once): no session or a failed read, tokens due
// for refresh, another decision, and a bearer token to check. entry calls
// it only when Server.quick: no Basic paths, no token relay, and the
// request log off.
func (s *Server) quickAuth(w http.ResponseWriter, r *http.Request, u *url.URL, facts *proxyfix.Facts, p *peeked) bool {
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		return false // the request log needs entry's request state
	}
	if s.bearer != nil {
		if _, ok := bearerToken(r.Header); ok {
			return false // withBearer checks it
		}
	}
	listed := s.fix.Listed(facts.Original.Peer)
	if !s.pathReadableOf(r, u, true, listed) || !hostAllowed(s.allowedHosts, facts.Host) {
		return false // entry answers 400
	}
	o := s.originFrom(*facts)
	token, _ := session.CookieValue(r, s.sessions.CookieName(o.Secure(), o.Prefix))
	p.v, p.known, p.err = s.sessions.Peek(r.Context(), token, true)
	p.done = true
	v := p.v
	if p.err != nil || !p.known || v == nil || !s.readOnlyUsable(v) {
		return false
	}
	id := v.ID()
	d, _, _ := s.rules.DecideStepUp(s.describedTargetOf(r, listed).request(r.Header), &id)
	if d != access.Public && d != access.Allowed {
		return false
	}
	s.metrics.CountForwardAuth(d, false)
	h := w.Header()
	varyCookie(h)
	h["Cache-Control"] = noStoreValue[:1:1]
	pre, _ := v.Derived().(*relay.Headers)
	s.relayFor(h, o, id, pre, "")
	w.WriteHeader(http.StatusAccepted)
	return true
}

// The headers in which proxies describe the request a forward-auth call is
// about. nginx sends what its configuration says (X-Original-URI and
// X-Original-Method by convention); Traefik and Caddy send X-Forwarded-Uri,
// -Method, -Host and -Proto.
const (
	hdrOriginalURI     = "X-Original-Uri"
	hdrOriginalMethod  = "X-Original-Method"
	hdrForwardedURI    = "X-Forwarded-Uri"
	hdrForwardedMethod = "X-Forwarded-Method"
	hdrForwardedHost   = "X-Forwarded-Host"
	hdrForwardedProto  = "X-Forwarded-Proto"
)

var describingHeaders = []string{hdrOriginalURI, hdrOriginalMethod, hdrForwardedURI, hdrForwardedMethod, hdrForwardedHost}

// target is what a trusted proxy says about the request a forward-auth call
// is about. An empty field is unknown.
type target struct {
	method string // as sent
	scheme string // "http" or "https"
	host   string // host[:port], lower case
	uri    string // path and query, as on the wire
}

// describedRequest is the request a forward-auth call asks about, for the
// access rules (see describedTarget). Path is the escaped path, without
// query; "" when unknown.
func (s *Server) describedRequest(r *http.Request) access.Request {
	return s.describedTarget(r).request(r.Header)
}

// request is t for the access rules; h are the request's headers (method
// overrides).
func (t target) request(h http.Header) access.Request {
	p := t.uri
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return access.Request{Method: t.method, Host: access.Hostname(t.host), Path: p, MethodOverride: access.MethodOverride(h)}
}

// describedTarget reads the request-describing headers, only when the
// direct peer is in trusted_proxies.from: hop counts alone do not do,
// because these headers are not appended to like X-Forwarded-For, and a
// client that reaches the broker directly could otherwise name any URI and
// get a public route's answer (CVE-2026-40575 in oauth2-proxy). From any
// other peer the request is unknown, and every rule that may apply to some
// request applies (policy.decideOne).
//
// A header is used only when it holds exactly one value, also across its
// two spellings (X-Original-URI and X-Forwarded-Uri): a proxy that sets one
// and passes on a client's other would otherwise let the client choose.
func (s *Server) describedTarget(r *http.Request) target {
	return s.describedTargetOf(r, s.fix.PeerListed(r))
}

// describedTargetOf is describedTarget with whether the direct peer is in
// trusted_proxies.from (listed) known.
func (s *Server) describedTargetOf(r *http.Request, listed bool) target {
	if !listed {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			return target{}
		}
		for _, h := range describingHeaders {
			if len(r.Header[h]) > 0 {
				s.log.DebugContext(r.Context(), "forward-auth: request-describing headers ignored: the peer is not in trusted_proxies.from",
					"peer", proxyfix.FromRequest(r).Original.RemoteAddr)
				break
			}
		}
		return target{}
	}
	var t target
	if v, ok := oneValue(r.Header, hdrOriginalURI, hdrForwardedURI); ok && validRequestURI(v) {
		t.uri = v
	}
	if v, ok := oneValue(r.Header, hdrOriginalMethod, hdrForwardedMethod); ok && validMethod(v) {
		t.method = v
	}
	if v, ok := oneValue(r.Header, hdrForwardedHost); ok && proxyfix.ValidHost(v) {
		t.host = strings.ToLower(v)
	}
	if v, ok := oneValue(r.Header, hdrForwardedProto); ok && (strings.EqualFold(v, "http") || strings.EqualFold(v, "https")) {
		t.scheme = strings.ToLower(v)
	}
	return t
}

// forwardAuthSignIn answers a forward-auth request that needs a sign-in:
// 401, with Location set to the sign-in page and the described request as
// its rd when safeRedirect allows it (nginx: auth_request_set from
// $upstream_http_location, then error_page 401 =302). With ?redirect=1
// (Traefik and Caddy pass the answer on to the client) a browser
// navigation gets a 302 there instead.
func (s *Server) forwardAuthSignIn(w http.ResponseWriter, r *http.Request, t target) {
	o := s.originOf(r)
	loc := o.URL("/oauth2/sign_in")
	if rd := t.rd(o); rd != "" && o.redirectAllowed(rd) {
		loc += "?rd=" + url.QueryEscape(rd)
	}
	w.Header().Set("Location", loc)
	method := t.method
	if method == "" {
		method = r.Method
	}
	switch r.URL.Query().Get("redirect") {
	case "1", "true":
		if wantsRedirect(&http.Request{Method: strings.ToUpper(method), Header: r.Header}) {
			w.WriteHeader(http.StatusFound)
			return
		}
	}
	signInRequired(w, loc, s.bearer != nil) // proxy.go: Traefik and Caddy pass the JSON on to API clients
}

// rd is where the browser should return after signing in: the described
// request as an absolute URL when its host is known, as a path on the
// broker's origin when only the URI is, "" when that is unknown too.
func (t target) rd(o origin) string {
	switch {
	case t.uri == "":
		return ""
	case t.host == "":
		return t.uri
	}
	scheme := t.scheme
	if scheme == "" {
		scheme = o.Scheme
	}
	return scheme + "://" + t.host + t.uri
}

// oneValue returns the one value that the named headers hold between them;
// false when they are absent or hold different values.
func oneValue(h http.Header, names ...string) (string, bool) {
	var v string
	found := false
	for _, n := range names {
		for _, x := range h[n] {
			if found && x != v {
				return "", false
			}
			v, found = x, true
		}
	}
	return v, found
}

// validRequestURI accepts an origin-form request target: "/" followed by
// anything but spaces and control characters.
func validRequestURI(v string) bool {
	if v == "" || v[0] != '/' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validMethod accepts an RFC 9110 token of letters, digits and '-', '_'.
func validMethod(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return v != "" && len(v) <= 32
}
