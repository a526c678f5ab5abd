package broker

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// pathReadable reports whether the path of a request, as the access rules
// will decide it, decodes to text that every app reads the same way:
// valid UTF-8 without control characters (C0 and DEL). entry answers 400
// otherwise: NUL ends a string in C, CR and LF split log lines, and
// servers differ on what to do with invalid UTF-8 (replace, drop, refuse),
// so the app could act on another path than the one the rules decided.
//
// u is the request's URL after the external prefix, whose Path net/http
// decoded. On forward-auth (forwardAuth) the request is the one a trusted
// proxy describes: its URI is judged when describedTarget would read it
// (one value, from a peer in trusted_proxies.from), and a URI that does
// not decode at all gets 400 too. The query is not judged: apps decode it
// into values, not into a route.
//
// It allocates nothing.
func (s *Server) pathReadable(r *http.Request, u *url.URL, forwardAuth bool) bool {
	if !forwardAuth {
		return decodedPathClean(u.Path)
	}
	v, ok := oneValue(r.Header, hdrOriginalURI, hdrForwardedURI)
	if !ok || !s.fix.PeerListed(r) {
		return true // not read (describedTarget): the rules take the request as unknown
	}
	if i := strings.IndexAny(v, "?#"); i >= 0 {
		v = v[:i]
	}
	return escapedPathClean(v)
}

// decodedPathClean reports whether the decoded path p is valid UTF-8
// without control characters.
func decodedPathClean(p string) bool {
	ascii := true
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(p)
}

// escapedPathClean is decodedPathClean for an escaped path, decoded on the
// fly (no allocation): false also when a '%' is not followed by two hex
// digits.
func escapedPathClean(p string) bool {
	for i := 0; i < len(p); {
		c, n, ok := decodedByte(p, i)
		switch {
		case !ok || c < 0x20 || c == 0x7f:
			return false
		case c < 0x80:
			i += n
			continue
		}
		// A multi-byte sequence: its decoded bytes, as far as they go.
		var buf [utf8.UTFMax]byte
		k := 0
		for j := i; k < len(buf) && j < len(p); k++ {
			if buf[k], n, ok = decodedByte(p, j); !ok {
				break // refused when the loop reaches it
			}
			j += n
		}
		r, size := utf8.DecodeRune(buf[:k])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		for ; size > 0; size-- {
			_, n, _ = decodedByte(p, i)
			i += n
		}
	}
	return true
}

// decodedByte decodes the byte of the escaped path p at i: a %XX escape
// (n = 3) or a byte as it is (n = 1); ok is false for a '%' without two
// hex digits.
func decodedByte(p string, i int) (c byte, n int, ok bool) {
	if p[i] != '%' {
		return p[i], 1, true
	}
	if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
		return 0, 0, false
	}
	return unhex(p[i+1])<<4 | unhex(p[i+2]), 3, true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
