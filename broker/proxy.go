package broker

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/relay"
)

// serveUpstream proxies a request the access rules let through (guard) to
// the matching upstream, with the identity headers when someone is signed
// in. The rules run before the upstream is chosen, so an anonymous client
// learns nothing about which paths exist.
func (s *Server) serveUpstream(w http.ResponseWriter, r *http.Request) {
	if len(s.upstreams) == 0 {
		if r.URL.Path != "/" {
			s.handleNotFound(w, r)
			return
		}
		http.Redirect(w, r, s.originOf(r).Path("/oauth2/userinfo"), http.StatusFound)
		return
	}
	up := s.matchUpstream(r)
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
	up.proxy.ServeHTTP(w, r)
}

// needSignIn answers a request that needs a signed-in user: a browser goes
// to the sign-in page (and back afterwards), an API client gets 401 with
// JSON that names the sign-in page (signInRequired).
func (s *Server) needSignIn(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	rd := r.URL.RequestURI() // the path the browser asked for, prefix included
	if info := requestInfoFrom(r.Context()); info == nil || !info.prefixKept {
		rd = o.Path(rd)
	}
	if wantsRedirect(r) {
		http.Redirect(w, r, o.Path("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd), http.StatusFound)
		return
	}
	signInRequired(w, o.URL("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd))
}

// sessionChallenge is the WWW-Authenticate of a 401 for want of a session.
// RFC 9110 section 11.6.1 wants a challenge in every 401; "Bearer" would
// advertise tokens the broker does not accept, so the challenge names the
// scheme the broker does use, a cookie session obtained by signing in
// (the "Cookie" scheme of draft-broyer-http-cookie-auth). Not Basic, even
// on a Basic path: a browser would answer a page's fetch with a password
// dialog instead of letting the page send the user to sign in.
const sessionChallenge = `Cookie realm="oidc-broker"`

// signInRequired writes the 401 an API client gets when nobody is signed
// in: JSON that names the sign-in page (signIn, an absolute URL on the
// broker's own origin, with rd), so that a page whose session ended can
// send the browser there (docs/flask.md has the script).
func signInRequired(w http.ResponseWriter, signIn string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("WWW-Authenticate", sessionChallenge)
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

// newReverseProxy proxies to one upstream's target. Everything the broker
// relays is written in Rewrite, on the outgoing request, after
// httputil.ReverseProxy removed the hop-by-hop headers: a client's
// Connection header can name any header, and would otherwise remove what
// the broker set. That is the identity headers (client-sent ones were
// stripped when the request arrived; on public routes too: the app may
// greet a signed-in user), the request ID, and the forwarding headers,
// which describe the broker's external origin as originOf established it
// (never a client's claim): X-Forwarded-For is the client address proxyfix
// trusted, X-Forwarded-Proto/Host/Port the origin, and X-Forwarded-Prefix
// the origin's prefix followed by the upstream's path when strip_prefix
// removed it. The broker's own session cookie is not passed on.
//
// Only WebSocket upgrades pass (webSocketOnly), and the upstream may
// switch to nothing else (refuseOtherSwitch).
func (s *Server) newReverseProxy(up *upstream, target *url.URL, tr http.RoundTripper) *httputil.ReverseProxy {
	idHeader := http.CanonicalHeaderKey(cmp.Or(s.cfg.Log.RequestIDHeader, DefaultRequestIDHeader))
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			o := s.originOf(pr.In)
			prefix := o.Prefix
			if up.strip && up.path != "/" {
				stripPath(pr.Out.URL, up.path)
				prefix += up.path
			}
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			h := pr.Out.Header
			webSocketOnly(h, pr.In.Header)
			dropForwardingHeaders(h)
			pr.SetXForwarded() // X-Forwarded-For from the effective RemoteAddr
			h.Set("X-Forwarded-Proto", o.Scheme)
			h.Set("X-Forwarded-Host", o.Host)
			h.Set("X-Forwarded-Port", o.port())
			if prefix != "" {
				h.Set("X-Forwarded-Prefix", prefix)
			}
			removeCookie(pr.Out, s.sessions.BaseName(), s.sessions.BaseName()+pending.BindingSuffix)
			if id := pr.In.Header[idHeader]; len(id) > 0 {
				h[idHeader] = id
			}
			if id, signedIn := IdentityFrom(pr.In.Context()); signedIn {
				s.relayIdentity(h, pr.In, id, up.audience)
			}
		},
		ModifyResponse: refuseOtherSwitch,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.logAnonymous(r.Context(), slog.LevelWarn, "upstream error", "upstream", target.Redacted(), "error", err)
			s.renderError(w, errorPage{Status: http.StatusBadGateway, Title: "Application unavailable",
				Message: "The application behind the sign-in service did not answer. Please try again in a moment."})
		},
	}
}

// webSocketOnly keeps in an outgoing request's headers h the one protocol
// switch the broker passes, when the client's request (its headers in)
// is a WebSocket handshake (isWebSocketUpgrade), and removes any other
// Upgrade with its Connection: upgrade (which is all httputil.ReverseProxy
// left of Connection), and always HTTP2-Settings. An app server that
// switches on "Upgrade: h2c" (Hypercorn does, without even asking for
// Connection) would otherwise give the client HTTP/2 straight to the app,
// where every later request on that connection passes no access rule.
// Stripped rather than refused, the request reaches the app as a plain
// one, which RFC 9110 section 7.8 lets a server answer without switching:
// a client that offered h2c carries on over HTTP/1.1.
func webSocketOnly(h, in http.Header) {
	if !isWebSocketUpgrade(in) {
		h.Del("Upgrade")
		h.Del("Connection")
	}
	h.Del("Http2-Settings")
}

// isWebSocketUpgrade reports whether the headers h (of a request, or of a
// 101 answer) switch to a WebSocket (RFC 6455 section 4): one Upgrade value
// that is exactly the token "websocket", in any case, and a Connection that
// lists "upgrade".
func isWebSocketUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.Trim(up[0], " \t"), "websocket") && hasToken(h["Connection"], "upgrade")
}

// hasToken reports whether the comma-separated header values list token,
// in any case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// refuseOtherSwitch is the reverse proxy's ModifyResponse: a 101 from the
// upstream is passed on only when it switches to the WebSocket the request
// asked for. webSocketOnly already removed every other Upgrade from the
// request, and net/http/httputil refuses a switch to another protocol than
// the request named; this does not rely on either. The error becomes a 502.
func refuseOtherSwitch(res *http.Response) error {
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil
	}
	if res.Request != nil && isWebSocketUpgrade(res.Request.Header) && isWebSocketUpgrade(res.Header) {
		return nil
	}
	return fmt.Errorf("broker: the upstream switched protocols to %q, not to a WebSocket the request asked for", res.Header.Values("Upgrade"))
}

// forwardingHeaders are the headers that describe the request's transport
// or its original target: those proxyfix reads (X-Forwarded-*, RFC 7239
// Forwarded) and forward-auth reads (X-Original-URI and -Method,
// X-Forwarded-Uri and -Method). A client's may be read when the request
// arrives (entry step 2), so they are not stripped then; on the way to an
// app, every spelling of them is removed (also with '_' for '-', which
// WSGI servers merge with the real header) before the broker sets its own.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Prefix", hdrForwardedURI, hdrForwardedMethod, hdrOriginalURI, hdrOriginalMethod}

// dropForwardingHeaders removes every forwardingHeaders header from h.
func dropForwardingHeaders(h http.Header) {
	for name := range h {
		if relay.MatchesAnyHeader(name, forwardingHeaders) {
			delete(h, name) // the key as sent
		}
	}
}

// removeCookie drops the broker's cookies named bases (the session's, the
// browser binding's; any of their prefixed names) from the outgoing Cookie
// header.
func removeCookie(r *http.Request, bases ...string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		n := strings.TrimPrefix(strings.TrimPrefix(c.Name, "__Host-"), "__Secure-")
		if !slices.Contains(bases, n) {
			r.AddCookie(c)
		}
	}
}
