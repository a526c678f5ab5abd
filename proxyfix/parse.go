package proxyfix

import (
	"errors"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Limits on single values taken from headers; longer values are rejected.
const (
	maxHostLen   = 300 // 253 for a DNS name, plus brackets and ":65535"
	maxPrefixLen = 1024
	maxNodeLen   = 128
)

// pickFromRight returns the n-th comma-separated value from the right of the header field
// values (all instances of one header, in order, as if joined with ","), trimmed of spaces
// and tabs. It reports false when n <= 0 or there are fewer than n values; it never returns
// a value from further left. Empty values count as values, so "a,,b" has three. It scans
// from the right and allocates nothing, however long the header.
func pickFromRight(instances []string, n int) (string, bool) {
	if n <= 0 {
		return "", false
	}
	for i := len(instances) - 1; i >= 0; i-- {
		s := instances[i]
		for {
			j := strings.LastIndexByte(s, ',')
			if n--; n == 0 {
				return strings.Trim(s[j+1:], " \t"), true
			}
			if j < 0 {
				break
			}
			s = s[:j]
		}
	}
	return "", false
}

var (
	errEmpty    = errors.New("empty value")
	errTooLong  = errors.New("value too long")
	errProto    = errors.New("scheme is neither http nor https")
	errPort     = errors.New("port is not a number from 1 to 65535")
	errHostname = errors.New("not a DNS name, IPv4 address or bracketed IPv6 address")
	errPrefix   = errors.New("not a clean absolute path of letters, digits and -._~/")
	errNode     = errors.New("not an IP address, RFC 7239 obfuscated identifier or \"unknown\"")
)

// parseProto accepts "http" or "https" in any case and returns it in lower case.
func parseProto(s string) (string, error) {
	switch {
	case strings.EqualFold(s, "https"):
		return "https", nil
	case strings.EqualFold(s, "http"):
		return "http", nil
	case s == "":
		return "", errEmpty
	}
	return "", errProto
}

// parsePort accepts 1 to 5 ASCII digits with a value from 1 to 65535 and returns the
// number in canonical form ("08080" gives "8080").
func parsePort(s string) (string, error) {
	if s == "" || len(s) > 5 {
		return "", errPort
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", errPort
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return "", errPort
	}
	if s[0] != '0' {
		return s, nil // already canonical
	}
	return strconv.Itoa(n), nil
}

// hostPort is a validated host: name is a lower-case DNS name, an IPv4 address or a
// bracketed IPv6 address, all in canonical form; port is "" or a canonical port number.
type hostPort struct {
	name string
	port string
}

// format returns the host as it should appear in URLs of the given scheme: the port is
// omitted when it is that scheme's default.
func (h hostPort) format(scheme string) string {
	return h.formatAs(scheme, "")
}

// formatAs is format, returning same instead of a new string when same
// already is the result (the Host header it was parsed from, as sent by
// nearly every client): no allocation per request.
func (h hostPort) formatAs(scheme, same string) string {
	if h.port == "" || h.port == defaultPort(scheme) {
		return h.name
	}
	if n := len(h.name); len(same) == n+1+len(h.port) && same[:n] == h.name && same[n] == ':' && same[n+1:] == h.port {
		return same
	}
	return h.name + ":" + h.port
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// parseHost accepts host[:port] as in a Host header (RFC 9110 section 7.2): a DNS name
// (letters, digits, '-' and '_' in dot-separated labels of 1 to 63 characters, no trailing
// dot, not ending in a numeric label unless it is a valid IPv4 address), an IPv4 address,
// or an IPv6 address in brackets without zone; port 1 to 65535. Userinfo, paths, spaces,
// control characters and percent-encoding are all rejected by these rules.
func parseHost(s string) (hostPort, error) {
	switch {
	case s == "":
		return hostPort{}, errEmpty
	case len(s) > maxHostLen:
		return hostPort{}, errTooLong
	}
	var name, port string
	hasPort := false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hostPort{}, errHostname
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return hostPort{}, errHostname
		}
		if name = s[:end+1]; a.String() != s[1:end] {
			name = "[" + a.String() + "]" // not in canonical form
		}
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return hostPort{}, errHostname
			}
			port, hasPort = rest[1:], true
		}
	} else {
		name = s
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			name, port, hasPort = s[:i], s[i+1:], true
		}
		var err error
		if name, err = parseHostname(name); err != nil {
			return hostPort{}, err
		}
	}
	if hasPort {
		var err error
		if port, err = parsePort(port); err != nil {
			return hostPort{}, err
		}
	}
	return hostPort{name: name, port: port}, nil
}

// looksIPv4 reports whether s has only digits and dots, so that names are
// not sent through netip.ParseAddr (whose error allocates) on every request.
func looksIPv4(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// parseHostname accepts an IPv4 address or a DNS name and returns it in lower case.
func parseHostname(s string) (string, error) {
	if looksIPv4(s) {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return s, nil // netip accepts only the canonical form: no leading zeros
		}
	}
	if s == "" || len(s) > 253 {
		return "", errHostname
	}
	upper := false
	labelStart := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			upper = upper || 'A' <= c && c <= 'Z'
			if !isAlnum(c) && c != '-' && c != '_' {
				return "", errHostname
			}
			continue
		}
		if n := i - labelStart; n < 1 || n > 63 {
			return "", errHostname
		}
		if i == len(s) && looksNumeric(s[labelStart:]) {
			// "1.2.3", "0x7f.1" and "010.0.0.1" are IPv4 addresses to some URL parsers.
			return "", errHostname
		}
		labelStart = i + 1
	}
	if upper {
		s = strings.ToLower(s) // ASCII only, checked above
	}
	return s, nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// looksNumeric reports whether a last label would make WHATWG URL parsers read the whole
// name as an IPv4 address: all digits, or "0x" followed by hex digits.
func looksNumeric(label string) bool {
	hex := len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')
	if hex {
		label = label[2:]
	}
	for i := 0; i < len(label); i++ {
		c := label[i] | 0x20 // lower case for letters; digits stay digits
		if !('0' <= label[i] && label[i] <= '9') && !(hex && 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parsePrefix accepts a clean absolute path made of letters, digits, '-', '.', '_', '~'
// and '/', and returns it without trailing slash ("/" gives ""). It rejects "//", "." and
// ".." segments, and everything else a URL parser might read differently: '\', '%', '?',
// '#', ':', '@', spaces and control characters.
func parsePrefix(s string) (string, error) {
	switch {
	case s == "":
		return "", errEmpty
	case len(s) > maxPrefixLen:
		return "", errTooLong
	case s[0] != '/':
		return "", errPrefix
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("-._~/", rune(c)) {
			return "", errPrefix
		}
	}
	if len(s) > 1 {
		s = strings.TrimSuffix(s, "/")
	}
	if path.Clean(s) != s {
		return "", errPrefix
	}
	if s == "/" {
		return "", nil
	}
	return s, nil
}

// node is a validated client node (RFC 7239 section 6): an IP address, or a name that is
// "unknown" or an obfuscated identifier, with an optional port (0 when absent or
// obfuscated).
type node struct {
	addr netip.Addr // valid for IP nodes, unmapped
	name string     // "unknown" or "_obfuscated" when addr is not valid
	port uint16
}

// String returns the node without port, as Facts.ClientNode.
func (n node) String() string {
	if n.addr.IsValid() {
		return n.addr.String()
	}
	return n.name
}

// remoteAddr returns the node in http.Request.RemoteAddr form, "ip:port" or "[ip]:port".
func (n node) remoteAddr() string {
	if n.addr.IsValid() {
		return netip.AddrPortFrom(n.addr, n.port).String()
	}
	return net.JoinHostPort(n.name, strconv.Itoa(int(n.port)))
}

// parseNode accepts an RFC 7239 node (IPv4 address, bracketed IPv6 address, "unknown" or
// an obfuscated identifier "_" 1*(ALPHA / DIGIT / "." / "_" / "-"), optionally followed by
// ":" and a port or obfuscated port) and, as X-Forwarded-For commonly carries them, a bare
// IPv6 address. Zones are rejected.
func parseNode(s string) (node, error) {
	switch {
	case s == "":
		return node{}, errEmpty
	case len(s) > maxNodeLen:
		return node{}, errTooLong
	}
	var n node
	var name, port string
	hasPort := false
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return node{}, errNode
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return node{}, errNode
		}
		n.addr = a.Unmap()
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' {
				return node{}, errNode
			}
			port, hasPort = rest[1:], true
		}
	case strings.Count(s, ":") > 1:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return node{}, errNode
		}
		n.addr = a.Unmap()
	default:
		name = s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			name, port, hasPort = s[:i], s[i+1:], true
		}
		switch {
		case strings.EqualFold(name, "unknown"):
			n.name = "unknown"
		case isObfuscated(name):
			n.name = name
		default:
			a, err := netip.ParseAddr(name)
			if err != nil || !a.Is4() {
				return node{}, errNode
			}
			n.addr = a
		}
	}
	if hasPort && !isObfuscated(port) {
		if len(port) == 0 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return node{}, errNode
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return node{}, errNode
		}
		n.port = uint16(p)
	}
	return n, nil
}

// isObfuscated reports whether s is an RFC 7239 obfnode or obfport:
// "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
