package broker

import (
	"net/url"
	"strings"
)

const maxRedirectLength = 2048

// safeRedirect returns rd when it is a path on the broker's own origin and
// the origin's root (under its prefix) otherwise. Refused: anything with a scheme or host (https://evil,
// https:evil, //evil), a backslash anywhere (/\evil is //evil to browsers),
// control characters (CR/LF header injection), and the percent-encoded
// forms of those, at any depth of encoding.
func (o origin) safeRedirect(rd string) string {
	if isSafeRedirect(rd) {
		return rd
	}
	return o.Path("/")
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
