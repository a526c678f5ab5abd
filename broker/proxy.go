package broker

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
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
	if id, signedIn := IdentityFrom(r.Context()); signedIn { // on public routes too: the app may greet a signed-in user
		s.relayIdentity(r.Header, r, id, up.audience)
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
// to the sign-in page (and back afterwards), an API client gets 401.
func (s *Server) needSignIn(w http.ResponseWriter, r *http.Request) {
	if wantsRedirect(r) {
		o := s.originOf(r)
		rd := r.URL.RequestURI() // the path the browser asked for, prefix included
		if info := requestInfoFrom(r.Context()); info == nil || !info.prefixKept {
			rd = o.Path(rd)
		}
		http.Redirect(w, r, o.Path("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd), http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="oidc-broker"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"not signed in"}` + "\n"))
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

// newReverseProxy proxies to one upstream's target. The identity headers
// are set by serveUpstream on the inbound request (client-sent ones were
// stripped first); the broker's own session cookie is not passed on. The
// forwarding headers the app receives describe the broker's external
// origin as originOf established it (never a client's claim):
// X-Forwarded-For is the client address proxyfix trusted,
// X-Forwarded-Proto/Host/Port the origin, and X-Forwarded-Prefix the
// origin's prefix followed by the upstream's path when strip_prefix
// removed it.
func (s *Server) newReverseProxy(up *upstream, target *url.URL, tr http.RoundTripper) *httputil.ReverseProxy {
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
			pr.SetXForwarded() // X-Forwarded-For from the effective RemoteAddr
			h := pr.Out.Header
			h.Set("X-Forwarded-Proto", o.Scheme)
			h.Set("X-Forwarded-Host", o.Host)
			h.Set("X-Forwarded-Port", o.port())
			h.Del("X-Forwarded-Prefix")
			if prefix != "" {
				h.Set("X-Forwarded-Prefix", prefix)
			}
			removeCookie(pr.Out, s.sessions.baseName)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.WarnContext(r.Context(), "upstream error", "upstream", target.Redacted(), "error", err)
			s.renderError(w, errorPage{Status: http.StatusBadGateway, Title: "Application unavailable",
				Message: "The application behind the sign-in service did not answer. Please try again in a moment."})
		},
	}
}

// removeCookie drops the session cookie (any of its prefixed names) from the
// outgoing Cookie header.
func removeCookie(r *http.Request, base string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		n := strings.TrimPrefix(strings.TrimPrefix(c.Name, "__Host-"), "__Secure-")
		if n != base {
			r.AddCookie(c)
		}
	}
}
