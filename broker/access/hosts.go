package access

import (
	"errors"
	"strings"
)

// HostPattern is one entry of a host list: a host name ("app.example.com")
// or, with a leading dot, a domain and all its subdomains (".example.com"
// matches example.com and a.b.example.com). It is the one matcher of every
// host list in the configuration: allowed_hosts, routes[].host,
// upstreams[].host, redirect_hosts and email_domains.
//
// A fully qualified name with a trailing dot names the same host as without
// it ("app.example.com." is "app.example.com"), in a pattern as in a
// request's host, so no list can be passed by adding a dot, and a request
// that names its host with one is decided, routed and let in as the host
// without it.
//
// The zero value matches nothing; use ParseHostPattern.
type HostPattern struct {
	p string // lower case, without trailing dot; a leading dot for a domain
}

// ErrHostPattern is the error of a malformed host pattern.
var ErrHostPattern = errors.New("must be a host name or .domain")

// ParseHostPattern reads a host name or ".domain": labels of letters,
// digits, '-' and '_' between dots, none empty, in any case, optionally
// ending in one dot. Ports, paths, wildcards and IP literals in brackets
// are not host patterns.
func ParseHostPattern(s string) (HostPattern, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(s, "."), ".")
	if !validLabels(name) {
		return HostPattern{}, ErrHostPattern
	}
	p := strings.ToLower(name)
	if s[0] == '.' {
		p = "." + p
	}
	return HostPattern{p: p}, nil
}

// validLabels: letters, digits, '-', '_' and dots between non-empty labels.
func validLabels(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidHostname reports whether s is a plain DNS name or IPv4 address:
// letters, digits, '-' and dots between non-empty labels, no trailing dot.
// It is stricter than a host pattern (no '_', no leading or trailing dot),
// for names read from untrusted URLs.
func ValidHostname(s string) bool {
	return validLabels(s) && !strings.Contains(s, "_")
}

// Match reports whether host, a name without port in any case (a trailing
// dot ignored), is p's host or, for a domain, in p's domain. It allocates
// nothing.
func (p HostPattern) Match(host string) bool {
	if p.p == "" {
		return false
	}
	host = strings.TrimSuffix(host, ".")
	if p.p[0] == '.' {
		return strings.EqualFold(host, p.p[1:]) ||
			len(host) > len(p.p) && strings.EqualFold(host[len(host)-len(p.p):], p.p)
	}
	return strings.EqualFold(host, p.p)
}

// IsDomain reports whether p is a ".domain" pattern.
func (p HostPattern) IsDomain() bool { return p.p != "" && p.p[0] == '.' }

// String is the pattern in its normal form: lower case, no trailing dot.
func (p HostPattern) String() string { return p.p }

// Hostname is the host name of a Host header or URL authority
// ("host[:port]", "[v6]:port") in lower case, without port, brackets or a
// trailing dot: the form host patterns are matched against.
func Hostname(hostport string) string {
	h := hostport
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// AnyHost reports whether host matches one of the patterns.
func AnyHost(patterns []HostPattern, host string) bool {
	for _, p := range patterns {
		if p.Match(host) {
			return true
		}
	}
	return false
}
