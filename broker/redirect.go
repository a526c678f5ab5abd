package broker

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

const maxRedirectLength = 2048

// safeRedirect returns rd when the browser may be sent there after signing
// in or out, and the origin's root (under its prefix) otherwise. Allowed:
// a path on the broker's own origin, and an absolute URL on the broker's
// own origin or on a host in redirect_hosts (see redirectAllowed).
// Everything else is refused as an open redirect: other hosts, scheme-
// relative and scheme-only forms (//evil, https:evil), a backslash anywhere
// (/\evil is //evil to browsers), userinfo (https://good@evil), control
// characters (CR/LF header injection), and the percent-encoded forms of
// those, at any depth of encoding.
func (o origin) safeRedirect(rd string) string {
	if o.redirectAllowed(rd) {
		return rd
	}
	return o.Path("/")
}

// redirectAllowed reports whether rd is a path on the broker's own origin,
// or an absolute URL that redirectHosts (or the origin itself) allows.
func (o origin) redirectAllowed(rd string) bool {
	return isSafeRedirect(rd) || o.absoluteRedirectAllowed(rd)
}

func isSafeRedirect(rd string) bool {
	if rd == "" || len(rd) > maxRedirectLength || rd[0] != '/' {
		return false
	}
	// Decode repeatedly so that %2F%2F, %252F%252F and friends are seen for
	// what a lenient server or browser may turn them into.
	s := rd
	for range 4 {
		if !cleanPathText(s) {
			return false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if d == s {
			break
		}
		s = d
	}
	if !cleanPathText(s) {
		return false
	}
	u, err := url.Parse(rd)
	return err == nil && u.Scheme == "" && u.Host == "" && u.Opaque == "" && u.User == nil
}

// cleanPathText rejects text that a browser could read as leaving the
// origin: a leading "//" or "/\", any backslash, and control characters.
func cleanPathText(s string) bool {
	if strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// absoluteRedirectAllowed accepts "https://host[:port]/path?query#fragment"
// (http only when the broker itself is served over http) whose host is the
// broker's own or matches redirect_hosts. The text must be plain: no
// backslash, whitespace or control character anywhere, and an authority of
// a lower-case DNS name and an optional port only (no userinfo, no
// percent-encoding, no IP literal unless listed). A port must be listed
// with the name; a name without port allows the scheme's default port only.
// The standard parser must then see the same scheme, host and no userinfo.
func (o origin) absoluteRedirectAllowed(rd string) bool {
	if len(rd) > maxRedirectLength {
		return false
	}
	scheme, rest, ok := strings.Cut(rd, "://")
	if !ok || scheme != "https" && (scheme != "http" || o.Scheme != "http") {
		return false
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	name, port, ok := splitRedirectHost(authority, scheme)
	if !ok {
		return false
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != scheme || u.Host != authority || u.User != nil || u.Opaque != "" {
		return false
	}
	if own, ownPort, ok := splitRedirectHost(strings.ToLower(o.Host), o.Scheme); ok && scheme == o.Scheme && name == own && port == ownPort {
		return true
	}
	return o.redirectHosts.allow(scheme, name, port)
}

// splitRedirectHost splits "name[:port]" into the name, in lower case, and
// the port, "" when it is the scheme's default. The name must be a DNS name
// (or IPv4 address) with non-empty labels; the port 1-65535 in plain digits.
func splitRedirectHost(authority, scheme string) (name, port string, ok bool) {
	name, port, hasPort := strings.Cut(authority, ":")
	if !access.ValidHostname(name) || hasPort && !validPort(port) {
		return "", "", false
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	return strings.ToLower(name), port, true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p[0] >= '1' && p[0] <= '9'
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// redirectHosts is the compiled redirect_hosts list.
type redirectHosts []redirectHost

type redirectHost struct {
	name access.HostPattern
	port string // "" for the scheme's default port
}

func compileRedirectHosts(list []string) *redirectHosts {
	var out redirectHosts
	for _, h := range list {
		name, port, _ := strings.Cut(h, ":")
		p, _ := access.ParseHostPattern(name) // validated
		out = append(out, redirectHost{name: p, port: port})
	}
	return &out
}

// allow reports whether a validated name and port ("" for the default) are
// listed. A nil list allows nothing.
func (l *redirectHosts) allow(scheme, name, port string) bool {
	if l == nil {
		return false
	}
	for _, h := range *l {
		p := h.port
		if p == defaultPort(scheme) {
			p = ""
		}
		if p == port && h.name.Match(name) {
			return true
		}
	}
	return false
}

// redirectHostProblems validates redirect_hosts: "name", ".domain", each
// optionally with ":port".
func (c Config) redirectHostProblems() []error {
	var errs []error
	for i, h := range c.RedirectHosts {
		name, port, hasPort := strings.Cut(h, ":")
		if _, err := access.ParseHostPattern(name); err != nil || hasPort && !validPort(port) {
			errs = append(errs, fmt.Errorf("redirect_hosts[%d]: %q must be a host name or .domain, optionally with :port", i, h))
		}
	}
	return errs
}
