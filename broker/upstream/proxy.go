package upstream

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/relay"
)

// Origin is the broker's external origin for a request, as the broker
// established it (never a client's claim).
type Origin struct {
	Scheme, Host, Port string
	Prefix             string // "" or "/path" without a trailing slash
}

// Relay is what the reverse proxy needs of the broker for each request.
type Relay struct {
	// Origin is the request's external origin.
	Origin func(r *http.Request) Origin
	// Identity writes the identity headers (and the assertion for
	// audience) into h when r is signed in.
	Identity func(h http.Header, r *http.Request, audience string)
	// Tokens writes the tokens an upstream asks for (Config.Tokens) into
	// h; called only for those upstreams.
	Tokens func(h http.Header, r *http.Request, t Tokens)
	// RequestIDHeader is the canonical name of the request ID header,
	// passed on as the broker has it.
	RequestIDHeader string
	// Cookies are the base names of the broker's cookies (any of their
	// prefixed names), never passed on.
	Cookies []string
	// Failed answers a request the upstream did not answer (502).
	Failed func(w http.ResponseWriter, r *http.Request, upstream string, err error)
}

// newReverseProxy proxies to one upstream's target. Everything the broker
// relays is written in Rewrite, on the outgoing request, after
// httputil.ReverseProxy removed the hop-by-hop headers: a client's
// Connection header can name any header, and would otherwise remove what
// the broker set. That is the identity headers (client-sent ones were
// stripped when the request arrived; on public routes too: the app may
// greet a signed-in user), the request ID, and the forwarding headers,
// which describe the broker's external origin (never a client's claim):
// X-Forwarded-For is the client address proxyfix trusted,
// X-Forwarded-Proto/Host/Port the origin, and X-Forwarded-Prefix the
// origin's prefix followed by the upstream's path when strip_prefix
// removed it. The broker's own cookies are not passed on.
//
// Only WebSocket upgrades pass (webSocketOnly), and the upstream may
// switch to nothing else (refuseOtherSwitch).
func newReverseProxy(up *Upstream, target *url.URL, tr http.RoundTripper, relay Relay) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			o := relay.Origin(pr.In)
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
			h.Set("X-Forwarded-Port", o.Port)
			if prefix != "" {
				h.Set("X-Forwarded-Prefix", prefix)
			}
			removeCookie(pr.Out, relay.Cookies...)
			if id := pr.In.Header[relay.RequestIDHeader]; len(id) > 0 {
				h[relay.RequestIDHeader] = id
			}
			relay.Identity(h, pr.In, up.audience)
			if up.tokens.Enabled() && relay.Tokens != nil {
				relay.Tokens(h, pr.In, up.tokens)
			}
		},
		ModifyResponse: refuseOtherSwitch,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			relay.Failed(w, r, target.Redacted(), err)
		},
	}
}

// webSocketOnly keeps in an outgoing request's headers h the one protocol
// switch the broker passes, when the client's request (its headers in)
// is a WebSocket handshake (IsWebSocketUpgrade), and removes any other
// Upgrade with its Connection: upgrade (which is all httputil.ReverseProxy
// left of Connection), and always HTTP2-Settings. An app server that
// switches on "Upgrade: h2c" (Hypercorn does, without even asking for
// Connection) would otherwise give the client HTTP/2 straight to the app,
// where every later request on that connection passes no access rule.
// Stripped rather than refused, the request reaches the app as a plain
// one, which RFC 9110 section 7.8 lets a server answer without switching:
// a client that offered h2c carries on over HTTP/1.1.
func webSocketOnly(h, in http.Header) {
	if !IsWebSocketUpgrade(in) {
		h.Del("Upgrade")
		h.Del("Connection")
	}
	h.Del("Http2-Settings")
}

// IsWebSocketUpgrade reports whether the headers h (of a request, or of a
// 101 answer) switch to a WebSocket (RFC 6455 section 4): one Upgrade value
// that is exactly the token "websocket", in any case, and a Connection that
// lists "upgrade".
func IsWebSocketUpgrade(h http.Header) bool {
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
	if res.Request != nil && IsWebSocketUpgrade(res.Request.Header) && IsWebSocketUpgrade(res.Header) {
		return nil
	}
	return fmt.Errorf("upstream: the upstream switched protocols to %q, not to a WebSocket the request asked for", res.Header.Values("Upgrade"))
}

// forwardingHeaders are the headers that describe the request's transport
// or its original target: those proxyfix reads (X-Forwarded-*, RFC 7239
// Forwarded) and forward-auth reads (X-Original-URI and -Method,
// X-Forwarded-Uri and -Method). A client's may be read when the request
// arrives (the broker's entry), so they are not stripped then; on the way
// to an app, every spelling of them is removed (also with '_' for '-',
// which WSGI servers merge with the real header) before the broker sets
// its own.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-Uri", "X-Original-Method"}

// IsForwardingHeader reports whether name is one of the forwarding
// headers, in any spelling (a token header may not be one).
func IsForwardingHeader(name string) bool { return relay.MatchesAnyHeader(name, forwardingHeaders) }

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
