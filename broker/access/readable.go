package access

import "unicode/utf8"

// Readable reports whether the decoded path p is text that every app
// reads the same way: valid UTF-8 without control characters (C0 and
// DEL). NUL ends a string in C, CR and LF split log lines, and servers
// differ on what to do with invalid UTF-8 (replace, drop, refuse), so the
// app could act on another path than the one the rules decided. It
// allocates nothing.
func Readable(p string) bool {
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

// ReadableEscaped is Readable for an escaped path, decoded on the fly
// (no allocation): false also when a '%' is not followed by two hex
// digits.
func ReadableEscaped(p string) bool {
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
