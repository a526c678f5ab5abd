// Package relay is what the broker tells apps about the signed-in user:
// the identity headers (X-Auth-Request-*), the removal of every header a
// client could forge them with, and the signed assertion (a short-lived
// JWT), its keys and the JWKS that publishes them. It reads a
// providers.Identity; it knows no session, rule or route.
package relay

import (
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
	HeaderName              = "X-Auth-Request-Name"
	// HeaderGroupsIncomplete is "true" when the IdP said the groups did not
	// fit in its token (Entra ID's groups overage): X-Auth-Request-Groups
	// is then not the user's full list. Absent otherwise.
	HeaderGroupsIncomplete = "X-Auth-Request-Groups-Incomplete"
)

// StripIdentityHeaders removes from a request's headers h every
// X-Auth-Request-* header a client sent, every header of claimHeaders, and
// every header named in also (the assertion's configured header; empty
// names are ignored), matched like the prefix: in any case and with '_'
// for '-'. The broker's entry chain runs it before anything else, so nothing downstream can
// ever see a forged identity.
func StripIdentityHeaders(h http.Header, also ...string) {
	for name := range h {
		if IsIdentityHeader(name) || isClaimHeader(name) || MatchesAnyHeader(name, also) {
			delete(h, name) // the key as sent: Del would canonicalize it
		}
	}
}

// claimHeaders are the headers, other than X-Auth-Request-*, in which a
// client could claim to apps what only the broker (or a proxy in front of
// it) may say, and which the broker never reads: a client address
// (frameworks and apps read X-Real-IP and its kin in place of the
// connection's), a scheme, a URL that overrides the request's path
// (X-Original-URL: the access rules decided another path), and the
// identity headers of other auth proxies that apps are set up to read
// (oauth2-proxy's X-Forwarded-User and GAP-Auth, Remote-User, Grafana's
// X-WEBAUTH-USER). Upper case, '-' for '_' (claimHeader folds a name so).
// The forwarding headers that proxyfix and forward-auth read are not here:
// the reverse proxy replaces them (forwardingHeaders, proxy.go).
var claimHeaders = map[string]bool{
	"X-REAL-IP": true, "TRUE-CLIENT-IP": true, "CF-CONNECTING-IP": true, "X-CLIENT-IP": true,
	"X-CLUSTER-CLIENT-IP": true, "FASTLY-CLIENT-IP": true, "X-ORIGINAL-FORWARDED-FOR": true,
	"X-FORWARDED": true, "FORWARDED-FOR": true, "X-ORIGINATING-IP": true, "X-REMOTE-IP": true,
	"X-REMOTE-ADDR": true, "X-PROXYUSER-IP": true,
	"X-FORWARDED-SSL": true, "X-FORWARDED-SCHEME": true, "X-URL-SCHEME": true, "FRONT-END-HTTPS": true,
	"X-ORIGINAL-URL": true, "X-REWRITE-URL": true,
	"X-FORWARDED-USER": true, "X-FORWARDED-EMAIL": true, "X-FORWARDED-PREFERRED-USERNAME": true,
	"X-FORWARDED-GROUPS": true, "X-FORWARDED-ACCESS-TOKEN": true, "GAP-AUTH": true,
	"REMOTE-USER": true, "X-REMOTE-USER": true, "X-WEBAUTH-USER": true,
}

// maxClaimHeader is the length of the longest name in claimHeaders.
const maxClaimHeader = len("X-FORWARDED-PREFERRED-USERNAME")

// claimFilter[n] has the bit c&63 set for the last byte c of each name of
// length n in claimHeaders: it rules out nearly every other header without
// folding it (entry runs on every request).
var claimFilter = func() (f [maxClaimHeader + 1]uint64) {
	for name := range claimHeaders {
		f[len(name)] |= 1 << (name[len(name)-1] &^ 0x20 & 63)
	}
	return f
}()

// isClaimHeader reports whether name is one of claimHeaders, in any case
// and with '_' for '-'. It folds name on the stack: no allocation.
func isClaimHeader(name string) bool {
	if len(name) == 0 || len(name) > maxClaimHeader {
		return false
	}
	if last := name[len(name)-1]; claimFilter[len(name)]&(1<<(last&^0x20&63)) == 0 {
		return false
	}
	var buf [maxClaimHeader]byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return claimHeaders[string(buf[:len(name)])]
}

// MatchesAnyHeader reports whether name is one of names, compared like
// IsIdentityHeader compares the prefix: in any case, '_' for '-'.
func MatchesAnyHeader(name string, names []string) bool {
	for _, n := range names {
		if n != "" && len(n) == len(name) && foldHeader(name, n) {
			return true
		}
	}
	return false
}

// foldHeader reports whether name begins with want, ignoring case and
// treating '_' as '-'.
func foldHeader(name, want string) bool {
	if len(name) < len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		a, b := name[i], want[i]
		if a == '_' {
			a = '-'
		}
		if b == '_' {
			b = '-'
		}
		if 'a' <= a && a <= 'z' {
			a -= 'a' - 'A'
		}
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// IsIdentityHeader reports whether name is an X-Auth-Request-* header. It
// matches the prefix case-insensitively and with '_' for
// '-': CGI and WSGI servers map both X-Auth-Request-User and
// X_Auth_Request_User to HTTP_X_AUTH_REQUEST_USER, so an underscore spelling
// would otherwise reach a Python app as the real header.
func IsIdentityHeader(name string) bool { return foldHeader(name, "X-Auth-Request-") }

// SetIdentityHeaders writes the identity into h. Email is relayed only when
// the IdP verified it. Values are encoded with HeaderValue.
func SetIdentityHeaders(h http.Header, id providers.Identity) {
	v := HeadersOf(id)
	v.Set(h)
}

// Headers are the identity headers' values for one identity, in the
// order of headerNames; a nil entry is a header not sent.
type Headers [7][]string

var headerNames = [7]string{HeaderUser, HeaderProvider, HeaderEmail, HeaderPreferredUsername, HeaderGroups,
	HeaderName, HeaderGroupsIncomplete}

// trueValue is the value of HeaderGroupsIncomplete, shared: capacity 1, so
// an Add copies it.
var trueValue = []string{"true"}

// HeadersOf makes id's header values, with one array for all of them:
// each is sliced to its own capacity, so that an Add on a header never
// writes into another, nor into a value that other requests share (a
// peeked session's, which the session cache shares).
func HeadersOf(id providers.Identity) Headers {
	v := make([]string, 6)
	var rh Headers
	v[0], v[1] = HeaderValue(id.User()), HeaderValue(id.Provider)
	rh[0], rh[1] = v[0:1:1], v[1:2:2]
	if e := id.VerifiedEmail(); e != "" {
		v[2] = HeaderValue(e)
		rh[2] = v[2:3:3]
	}
	if id.PreferredUsername != "" {
		v[3] = HeaderValue(id.PreferredUsername)
		rh[3] = v[3:4:4]
	}
	if len(id.Groups) > 0 {
		v[4] = groupsValue(id.Groups)
		rh[4] = v[4:5:5]
	}
	if id.Name != "" {
		v[5] = HeaderValue(id.Name)
		rh[5] = v[5:6:6]
	}
	if id.GroupsIncomplete {
		rh[6] = trueValue[:1:1]
	}
	return rh
}

// Set writes the headers into h, under their canonical names, sharing the
// values: the server only reads them, and an Add copies them first
// (capacity 1). Nothing may change a value in place (h[k][0] = …): for a
// peeked session's, that would change what later requests of the session
// relay (docs/embedding.md says so to embedding programs).
func (rh *Headers) Set(h http.Header) {
	for i, v := range rh {
		if v != nil {
			h[headerNames[i]] = v
		}
	}
}

// groupsValue is the groups header: each group encoded with HeaderValue and
// its commas as %2C, joined by commas.
func groupsValue(groups []string) string {
	n := len(groups)
	for _, g := range groups {
		n += len(g)
	}
	var b strings.Builder
	b.Grow(n)
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		if g = HeaderValue(g); strings.IndexByte(g, ',') >= 0 {
			g = strings.ReplaceAll(g, ",", "%2C")
		}
		b.WriteString(g)
	}
	return b.String()
}

// HeaderValue makes s safe and unambiguous as a header value: printable
// ASCII passes unchanged except '%', which becomes %25; every other byte
// (control characters such as CR and LF, and the UTF-8 bytes of non-ASCII
// text) is percent-encoded. Apps decode with a plain URL-unescape
// (Python: urllib.parse.unquote; Go: url.PathUnescape). ASCII values without
// '%' arrive exactly as the IdP sent them.
func HeaderValue(s string) string {
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
