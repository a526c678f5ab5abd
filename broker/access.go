package broker

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// handleAuth is the forward-auth endpoint (nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth): 202 with the identity headers for a
// signed-in user, 401 otherwise.
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, ok := s.sessions.identity(r.Context())
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	setIdentityHeaders(w.Header(), id)
	w.WriteHeader(http.StatusAccepted)
}

// handleUserinfo returns the normalized identity as JSON, for UIs that show
// who is signed in.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id, ok := s.sessions.identity(r.Context())
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"not signed in"}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		User string `json:"user"`
		providers.Identity
	}{id.User(), id})
}

// handleSignOutPage shows a confirmation with a CSRF-protected form: a GET
// never signs anyone out, so a link or image on another site cannot.
func (s *Server) handleSignOutPage(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	id, signedIn := s.sessions.identity(ctx)
	data := signOutData{Title: "Sign out", SignedIn: signedIn, Action: o.Path("/oauth2/sign_out"), SignInURL: o.Path("/oauth2/sign_in")}
	// Without a (safe) rd the sign-out ends on the signed-out page, not at /.
	if rd := r.URL.Query().Get("rd"); isSafeRedirect(rd) {
		data.RD = rd
	}
	if signedIn {
		data.User = id.PreferredUsername
		if data.User == "" {
			data.User = id.User()
		}
		data.CSRF = s.sessions.sm.GetString(ctx, keyCSRF)
		if data.CSRF == "" {
			data.CSRF = randomToken()
			s.sessions.sm.Put(ctx, keyCSRF, data.CSRF)
		}
	} else {
		data.Title = "Signed out"
	}
	if err := saveSession(w); err != nil {
		s.sessionUnavailable(w, err)
		return
	}
	s.render(w, http.StatusOK, "sign_out.html", data)
}

type signOutData struct {
	Title, User, Action, CSRF, RD, SignInURL string
	SignedIn                                 bool
}

// handleSignOut ends the session after checking the CSRF token, then goes
// to rd (validated) or the signed-out page.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	o := s.originOf(r)
	ctx := r.Context()
	id, signedIn := s.sessions.identity(ctx)
	if signedIn {
		want := s.sessions.sm.GetString(ctx, keyCSRF)
		got := r.PostFormValue("csrf")
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			s.log.Warn("sign-out refused", "reason", "csrf token mismatch", "client", clientAddr(r))
			s.renderError(w, errorPage{Status: http.StatusForbidden, Title: "Sign-out not confirmed",
				Message: "The sign-out form expired. Please confirm again.", RetryURL: o.Path("/oauth2/sign_out")})
			return
		}
		if err := s.sessions.sm.Destroy(ctx); err != nil {
			s.sessionUnavailable(w, err)
			return
		}
		if err := saveSession(w); err != nil {
			s.sessionUnavailable(w, err)
			return
		}
		s.log.Info("signed out", "provider", id.Provider, "user", id.User(), "client", clientAddr(r))
	}
	rd := r.PostFormValue("rd")
	if rd == "" || !isSafeRedirect(rd) {
		rd = o.Path("/oauth2/sign_out")
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// handleApp serves everything outside /oauth2/: the upstream for a
// signed-in user, a sign-in redirect for a browser, 401 for an API client.
func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	id, ok := s.sessions.identity(r.Context())
	if !ok {
		if wantsRedirect(r) {
			o := s.originOf(r)
			rd := o.Path(r.URL.RequestURI()) // the path the browser asked for, prefix included
			http.Redirect(w, r, o.Path("/oauth2/sign_in")+"?rd="+url.QueryEscape(rd), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Bearer realm="oidc-broker"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"not signed in"}` + "\n"))
		return
	}
	if s.upstream == nil {
		if r.URL.Path != "/" {
			s.handleNotFound(w, r)
			return
		}
		http.Redirect(w, r, s.originOf(r).Path("/oauth2/userinfo"), http.StatusFound)
		return
	}
	setIdentityHeaders(r.Header, id)
	s.upstream.ServeHTTP(w, r)
}

// wantsRedirect tells a browser navigation from an API call: only a GET or
// HEAD that does not ask for JSON is sent to the sign-in page.
func wantsRedirect(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return !strings.Contains(r.Header.Get("Accept"), "application/json")
}

// newReverseProxy proxies to the upstream. The identity headers are set by
// handleApp on the inbound request (client-sent ones were stripped first);
// the broker's own session cookie is not passed on. The forwarding headers
// the app receives describe the broker's external origin as originOf
// established it (never a client's claim): X-Forwarded-For is the client
// address proxyfix trusted, X-Forwarded-Proto/Host/Port/Prefix the origin.
func (s *Server) newReverseProxy(target *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded() // X-Forwarded-For from the effective RemoteAddr
			o := s.originOf(pr.In)
			h := pr.Out.Header
			h.Set("X-Forwarded-Proto", o.Scheme)
			h.Set("X-Forwarded-Host", o.Host)
			h.Set("X-Forwarded-Port", o.port())
			h.Del("X-Forwarded-Prefix")
			if o.Prefix != "" {
				h.Set("X-Forwarded-Prefix", o.Prefix)
			}
			removeCookie(pr.Out, s.sessions.baseName)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("upstream error", "error", err)
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
