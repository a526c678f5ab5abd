// Package redirect decides where the broker may send a browser after
// signing in or out (rd): a path on the broker's own origin, or an
// absolute URL on its own origin or on a host in redirect_hosts. Anything
// else is refused as an open redirect: other hosts, scheme-relative and
// scheme-only forms (//evil, https:evil), a backslash anywhere (/\evil is
// //evil to browsers), userinfo (https://good@evil), control characters
// (CR/LF header injection), and the percent-encoded forms of those, at any
// depth of encoding.
package redirect

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

// MaxLength bounds an rd.
const MaxLength = 2048

// Allowed reports whether the browser may be sent to rd from the broker's
// origin (ownScheme, ownHost: host[:port]): a path on that origin (isPath),
// or an absolute URL that hosts (or the origin itself) allows.
func Allowed(rd, ownScheme, ownHost string, hosts *Hosts) bool {
	return isPath(rd) || absoluteAllowed(rd, ownScheme, ownHost, hosts)
}

// isPath reports whether rd is a path on the broker's own origin that
// no browser or lenient server reads as leaving it.
func isPath(rd string) bool {
	if rd == "" || len(rd) > MaxLength || rd[0] != '/' {
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
// broker's own (ownScheme, ownHost) or matches hosts (redirect_hosts). The text must be plain: no
// backslash, whitespace or control character anywhere, and an authority of
// a lower-case DNS name and an optional port only (no userinfo, no
// percent-encoding, no IP literal unless listed). A port must be listed
// with the name; a name without port allows the scheme's default port only.
// The standard parser must then see the same scheme, host and no userinfo.
func absoluteAllowed(rd, ownScheme, ownHost string, hosts *Hosts) bool {
	if len(rd) > MaxLength {
		return false
	}
	scheme, rest, ok := strings.Cut(rd, "://")
	if !ok || scheme != "https" && (scheme != "http" || ownScheme != "http") {
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
	name, port, ok := splitHost(authority, scheme)
	if !ok {
		return false
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != scheme || u.Host != authority || u.User != nil || u.Opaque != "" {
		return false
	}
	if own, ownPort, ok := splitHost(strings.ToLower(ownHost), ownScheme); ok && scheme == ownScheme && name == own && port == ownPort {
		return true
	}
	return hosts.allow(scheme, name, port)
}

// splitHost splits "name[:port]" into the name, in lower case, and
// the port, "" when it is the scheme's default. The name must be a DNS name
// (or IPv4 address) with non-empty labels; the port 1-65535 in plain digits.
func splitHost(authority, scheme string) (name, port string, ok bool) {
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

// Hosts is the compiled redirect_hosts list.
type Hosts []host

type host struct {
	name access.HostPattern
	port string // "" for the scheme's default port
}

// Compile compiles a validated redirect_hosts list (Problems).
func Compile(list []string) *Hosts {
	var out Hosts
	for _, h := range list {
		name, port, _ := strings.Cut(h, ":")
		p, _ := access.ParseHostPattern(name) // validated
		out = append(out, host{name: p, port: port})
	}
	return &out
}

// allow reports whether a validated name and port ("" for the default) are
// listed. A nil list allows nothing.
func (l *Hosts) allow(scheme, name, port string) bool {
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

// Problems validates redirect_hosts: "name", ".domain", each optionally
// with ":port".
func Problems(list []string) []error {
	var errs []error
	for i, h := range list {
		name, port, hasPort := strings.Cut(h, ":")
		if _, err := access.ParseHostPattern(name); err != nil || hasPort && !validPort(port) {
			errs = append(errs, fmt.Errorf("redirect_hosts[%d]: %q must be a host name or .domain, optionally with :port", i, h))
		}
	}
	return errs
}
