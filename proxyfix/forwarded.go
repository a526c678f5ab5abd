package proxyfix

import (
	"fmt"
	"strings"
)

// forwardedElement is one element of an RFC 7239 Forwarded header: its pairs in order,
// with lower-case parameter names and unquoted values. A name occurs at most once.
type forwardedElement []forwardedPair

type forwardedPair struct {
	name, value string
}

// get returns the value of the parameter name (lower case).
func (e forwardedElement) get(name string) (string, bool) {
	for _, p := range e {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

// parseForwarded parses the field values of all instances of a Forwarded header (RFC 7239
// section 4) into their elements, in order:
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// Elements are separated by commas outside quoted strings; empty elements (and empty
// instances) count as elements without pairs, as empty values do in pickFromRight. Spaces
// and tabs around ',' and ';' are skipped; none are allowed around '='. Parameter names are
// case-insensitive; quoted strings may hold backslash escapes. Each instance is parsed on
// its own, which equals parsing them joined with "," when they are well formed and keeps an
// unterminated quote sent by a client from swallowing the values proxies appended. Any
// syntax error, or a parameter repeated within an element, fails the whole header.
func parseForwarded(instances []string) ([]forwardedElement, error) {
	var elems []forwardedElement
	for i, s := range instances {
		p := forwardedParser{s: s}
		es, err := p.parse()
		if err != nil {
			return nil, fmt.Errorf("instance %d: %w", i+1, err)
		}
		elems = append(elems, es...)
	}
	return elems, nil
}

type forwardedParser struct {
	s   string
	pos int
}

func (p *forwardedParser) parse() ([]forwardedElement, error) {
	var elems []forwardedElement
	var cur forwardedElement
	for {
		p.skipOWS()
		if p.pos < len(p.s) && p.s[p.pos] != ',' && p.s[p.pos] != ';' {
			pair, err := p.pair()
			if err != nil {
				return nil, err
			}
			if _, dup := cur.get(pair.name); dup {
				return nil, fmt.Errorf("parameter %q repeated in element %d", pair.name, len(elems)+1)
			}
			cur = append(cur, pair)
			p.skipOWS()
		}
		if p.pos == len(p.s) {
			return append(elems, cur), nil
		}
		switch p.s[p.pos] {
		case ';':
		case ',':
			elems = append(elems, cur)
			cur = nil
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.pos], p.pos)
		}
		p.pos++
	}
}

func (p *forwardedParser) skipOWS() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// pair parses token "=" ( token / quoted-string ).
func (p *forwardedParser) pair() (forwardedPair, error) {
	name := p.token()
	if name == "" {
		return forwardedPair{}, fmt.Errorf("expected a parameter name at offset %d", p.pos)
	}
	if p.pos == len(p.s) || p.s[p.pos] != '=' {
		return forwardedPair{}, fmt.Errorf("expected '=' after %q at offset %d", name, p.pos)
	}
	p.pos++
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		v, err := p.quoted()
		return forwardedPair{name: strings.ToLower(name), value: v}, err
	}
	v := p.token()
	if v == "" {
		return forwardedPair{}, fmt.Errorf("expected a value for %q at offset %d", name, p.pos)
	}
	return forwardedPair{name: strings.ToLower(name), value: v}, nil
}

// token parses 1*tchar (RFC 9110 section 5.6.2); it returns "" when none is there.
func (p *forwardedParser) token() string {
	start := p.pos
	for p.pos < len(p.s) && isTchar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted parses a quoted-string (RFC 9110 section 5.6.4) starting at the opening quote and
// returns its unescaped content.
func (p *forwardedParser) quoted() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			if p.pos+1 == len(p.s) || !isQuotedPairChar(p.s[p.pos+1]) {
				return "", fmt.Errorf("bad escape in quoted string at offset %d", p.pos)
			}
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
		case isQdtext(c):
			b.WriteByte(c)
			p.pos++
		default:
			return "", fmt.Errorf("bad character %q in quoted string at offset %d", c, p.pos)
		}
	}
	return "", fmt.Errorf("unterminated quoted string at offset %d", start)
}

// isTchar reports whether c is a token character:
// "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" /
// DIGIT / ALPHA.
func isTchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQdtext reports whether c is qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
func isQdtext(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5B || 0x5D <= c && c <= 0x7E || c >= 0x80
}

// isQuotedPairChar reports whether c may follow a backslash: HTAB / SP / VCHAR / obs-text.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || 0x20 <= c && c <= 0x7E || c >= 0x80
}
