package access

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Path patterns of routes, and the readings of request paths they are
// matched against.
//
// A server behind the broker may read one request path in several ways:
// nginx and most frameworks decode %2F and %2E and resolve "..", Tomcat
// drops ";params" from each segment, some servers treat "\" as "/", a few
// decode twice, and a naive router matches the raw text by prefix, so
// /admin/../public/x is under /admin/ to it. The rules must not be
// evaluated on a path the app will read differently, or /public/..%2Fadmin
// reaches /admin under the public route's Decision. So a path that every server reads the same way (no
// '%', ';' or '\', no empty, "." or ".." segments) is matched as it is; any
// other is matched in each reading, and the request is granted only as far
// as every reading grants it.

// pathPattern is a compiled Route.Path.
type pathPattern struct {
	lit    string   // the pattern without trailing slash or {$} ("" for the root)
	prefix bool     // a trailing slash: the path and everything below it
	all    bool     // "/": matches every path
	segs   []string // with {name}: the literal segments, "" for a wildcard
}

// compilePattern compiles a validated pattern.
func compilePattern(p string) pathPattern {
	var pp pathPattern
	switch {
	case strings.HasSuffix(p, "/{$}"):
		pp.lit = strings.TrimSuffix(p, "/{$}")
	case strings.HasSuffix(p, "/"):
		pp.lit, pp.prefix = strings.TrimSuffix(p, "/"), true
		pp.all = pp.lit == ""
	default:
		pp.lit = p
	}
	if strings.Contains(pp.lit, "{") {
		for _, s := range strings.Split(pp.lit[1:], "/") {
			if strings.HasPrefix(s, "{") {
				s = ""
			}
			pp.segs = append(pp.segs, s)
		}
	}
	return pp
}

// match reports whether a clean path (a reading) matches. A trailing slash
// of the path does not matter: exact patterns match with or without it,
// and "/admin/" also matches "/admin".
func (pp *pathPattern) match(p string) bool {
	var rest string
	if pp.segs == nil {
		var ok bool
		if rest, ok = strings.CutPrefix(p, pp.lit); !ok {
			return false
		}
	} else {
		rest = p
		for _, seg := range pp.segs {
			if len(rest) < 2 || rest[0] != '/' {
				return false
			}
			rest = rest[1:]
			n := strings.IndexByte(rest, '/')
			if n < 0 {
				n = len(rest)
			}
			if seg != "" && rest[:n] != seg || n == 0 {
				return false
			}
			rest = rest[n:]
		}
	}
	if pp.prefix {
		return rest == "" || rest[0] == '/'
	}
	return rest == "" || rest == "/"
}

// validPattern checks a route's path pattern.
func validPattern(p string) error {
	if p == "" {
		return errors.New("is required")
	}
	if p[0] != '/' {
		return errors.New("must start with /")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`%\;?#*`, c) >= 0 {
			return errors.New(`must be a plain path: no spaces, control characters or any of % \ ; ? # *`)
		}
	}
	body := p
	if strings.HasSuffix(body, "/{$}") {
		body = strings.TrimSuffix(body, "{$}")
	}
	body = strings.TrimSuffix(body, "/")
	if body == "" {
		return nil // "/" or "/{$}"
	}
	for _, s := range strings.Split(body[1:], "/") {
		switch {
		case s == "":
			return errors.New("must not contain //")
		case s == "." || s == "..":
			return errors.New(`must not contain "." or ".." segments`)
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && validWildcard(s[1:len(s)-1]):
		case strings.ContainsAny(s, "{}"):
			return fmt.Errorf("segment %q: a wildcard is a whole segment {name} (letters, digits, _), and {$} may only end the pattern, after /", s)
		}
	}
	return nil
}

func validWildcard(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return name != ""
}

// simplePath reports whether every server reads the escaped path p the same
// way, so it can be matched as it is: no '%', ';', '\', control characters
// or spaces, and no empty, "." or ".." segments. "" (unknown) is simple.
func simplePath(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c == 0x7f || c == '%' || c == ';' || c == '\\':
			return false
		case c == '/' && i+1 < len(p):
			rest := p[i+1:]
			if rest[0] == '/' || rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return false
			}
		}
	}
	return true
}

// pathReadings returns the paths that servers may read the escaped path p
// as:
//
//   - literally: only escapes that leave the structure alone are decoded
//     (not %2F, %5C, %2E, %25), and "..", ";" and empty segments stay, as
//     a router that matches the raw path by prefix sees it;
//   - segment by segment: each segment decoded (an encoded slash stays
//     inside its segment), ";params" dropped, "." and ".." resolved;
//   - decoded once, and decoded until it no longer changes (at most four
//     times), each with "\" read as "/" and then cleaned.
//
// A path that does not start with "/" or does not decode is unknown: the
// only reading is "".
func pathReadings(p string) []string {
	if p == "" || p[0] != '/' {
		return []string{""}
	}
	lit, ok := literalReading(p)
	if !ok {
		return []string{""}
	}
	seg, ok := segmentReading(p)
	if !ok {
		return []string{""}
	}
	out := []string{lit}
	if seg != lit {
		out = append(out, seg)
	}
	s := p
	for i := range 4 {
		d, err := url.PathUnescape(s)
		if err != nil {
			break // the first decoding succeeded in segmentReading
		}
		if i > 0 && d == s {
			break
		}
		s = d
		if c := cleanReading(strings.ReplaceAll(s, `\`, "/")); !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// literalReading decodes the escapes of p except %2F, %5C, %2E and %25.
func literalReading(p string) (string, bool) {
	if !strings.Contains(p, "%") {
		return p, true
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		switch c := unhex(p[i+1])<<4 | unhex(p[i+2]); c {
		case '/', '\\', '.', '%':
			b.WriteString(p[i : i+3])
		default:
			b.WriteByte(c)
		}
		i += 2
	}
	return b.String(), true
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// cleanReading resolves empty, "." and ".." segments of a decoded path,
// keeping a trailing slash (like net/http's ServeMux).
func cleanReading(p string) string {
	c := path.Clean(p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// segmentReading decodes p segment by segment: a decoded "/" stays inside
// its segment (as NUL, which no pattern contains, so such a segment matches
// only a {name}), ";params" are dropped, and "." and ".." (also when
// encoded) are resolved.
func segmentReading(p string) (string, bool) {
	raw := strings.Split(p[1:], "/")
	segs := make([]string, 0, len(raw))
	for _, s := range raw {
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		switch d = strings.ReplaceAll(d, "/", "\x00"); d {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, d)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if len(segs) > 0 && strings.HasSuffix(p, "/") {
		out += "/"
	}
	return out, true
}

// upperToken reports whether m is "" or an upper-case method name: such a
// method needs no other reading.
func upperToken(m string) bool {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// methodReadings returns the methods an app may read the request as: the
// method as sent, in upper case, and each method-override header value.
func methodReadings(req Request) []string {
	out := []string{req.Method}
	if up := strings.ToUpper(req.Method); up != req.Method {
		out = append(out, up)
	}
	if req.MethodOverride != "" {
		for _, v := range strings.Split(req.MethodOverride, ",") {
			if v = strings.ToUpper(strings.TrimSpace(v)); v != "" && !contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}
