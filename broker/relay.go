package broker

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The identity headers relayed to apps (and on /oauth2/auth).
const (
	HeaderUser              = "X-Auth-Request-User"
	HeaderEmail             = "X-Auth-Request-Email"
	HeaderPreferredUsername = "X-Auth-Request-Preferred-Username"
	HeaderGroups            = "X-Auth-Request-Groups"
	HeaderProvider          = "X-Auth-Request-Provider"
)

// stripIdentityHeaders removes every X-Auth-Request-* header a client sent.
// It runs before anything else, so nothing downstream can ever see a forged
// identity.
func stripIdentityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name := range r.Header {
			if isIdentityHeader(name) {
				delete(r.Header, name) // the key as sent: Del would canonicalize it
			}
		}
		next.ServeHTTP(w, r)
	})
}

// isIdentityHeader matches the prefix case-insensitively and with '_' for
// '-': CGI and WSGI servers map both X-Auth-Request-User and
// X_Auth_Request_User to HTTP_X_AUTH_REQUEST_USER, so an underscore spelling
// would otherwise reach a Python app as the real header.
func isIdentityHeader(name string) bool {
	const prefix = "X-AUTH-REQUEST-"
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// relayIdentity writes what an app receives about the signed-in user into h
// (request headers for the upstream, response headers on forward-auth):
// the identity headers, for the app identified by audience. Every relay
// path goes through here.
func (s *Server) relayIdentity(h http.Header, r *http.Request, id providers.Identity, audience string) {
	_, _ = r, audience // used by the signed assertion
	setIdentityHeaders(h, id)
}

// setIdentityHeaders writes the identity into h. Email is relayed only when
// the IdP verified it. Values are encoded with headerValue.
func setIdentityHeaders(h http.Header, id providers.Identity) {
	h.Set(HeaderUser, headerValue(id.User()))
	h.Set(HeaderProvider, headerValue(id.Provider))
	if e := id.VerifiedEmail(); e != "" {
		h.Set(HeaderEmail, headerValue(e))
	}
	if id.PreferredUsername != "" {
		h.Set(HeaderPreferredUsername, headerValue(id.PreferredUsername))
	}
	if len(id.Groups) > 0 {
		enc := make([]string, len(id.Groups))
		for i, g := range id.Groups {
			enc[i] = strings.ReplaceAll(headerValue(g), ",", "%2C")
		}
		h.Set(HeaderGroups, strings.Join(enc, ","))
	}
}

// headerValue makes s safe and unambiguous as a header value: printable
// ASCII passes unchanged except '%', which becomes %25; every other byte
// (control characters such as CR and LF, and the UTF-8 bytes of non-ASCII
// text) is percent-encoded. Apps decode with a plain URL-unescape
// (Python: urllib.parse.unquote; Go: url.PathUnescape). ASCII values without
// '%' arrive exactly as the IdP sent them.
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
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
