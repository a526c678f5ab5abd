package proxyfix

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Header names, as net/http canonicalizes them.
const (
	hdrFor       = "X-Forwarded-For"
	hdrProto     = "X-Forwarded-Proto"
	hdrHost      = "X-Forwarded-Host"
	hdrPort      = "X-Forwarded-Port"
	hdrPrefix    = "X-Forwarded-Prefix"
	hdrForwarded = "Forwarded"
)

var allHeaders = []string{hdrFor, hdrProto, hdrHost, hdrPort, hdrPrefix, hdrForwarded}

// effective accumulates the facts of one request while headers are applied.
type effective struct {
	scheme   string
	host     hostPort
	hostOK   bool // host holds a valid host; otherwise the connection's Host stands as is
	prefix   string
	client   node
	clientOK bool // client was taken from a header
	trusted  bool
}

// resolve computes the Facts of r and, when a forwarded client was applied, the new
// RemoteAddr ("" otherwise).
func (f *Fix) resolve(r *http.Request) (Facts, string) {
	facts := connFacts(r)
	if !f.enabled || !f.peerAllowed(r, facts) {
		return facts, ""
	}
	e := effective{scheme: facts.Scheme}
	e.host, e.hostOK = parseHostOK(r.Host)
	if f.cfg.Forwarded > 0 {
		f.applyForwarded(r, &e)
	} else {
		f.applyXForwarded(r, &e)
	}
	if !e.trusted {
		return facts, ""
	}
	facts.Trusted = true
	facts.Scheme = e.scheme
	if e.hostOK {
		facts.Host = e.host.formatAs(e.scheme, facts.Host)
	}
	facts.Prefix = e.prefix
	if !e.clientOK {
		return facts, ""
	}
	facts.ClientIP = e.client.addr
	facts.ClientNode = e.client.String()
	return facts, e.client.remoteAddr()
}

func parseHostOK(s string) (hostPort, bool) {
	h, err := parseHost(s)
	return h, err == nil
}

// peerAllowed reports whether the direct peer may send forwarding headers: From is empty
// or holds the peer's address.
func (f *Fix) peerAllowed(r *http.Request, facts Facts) bool {
	if len(f.from) == 0 || f.Listed(facts.Original.Peer) {
		return true
	}
	for _, h := range allHeaders {
		if len(r.Header.Values(h)) > 0 {
			f.debug(r, h, "", "direct peer is not in from; no forwarding header is honoured")
			break
		}
	}
	return false
}

// listed reports whether the peer remoteAddr ("ip:port") is inside From.
func (f *Fix) listed(remoteAddr string) bool {
	ip, _ := peerAddr(remoteAddr)
	return f.Listed(ip)
}

// applyXForwarded applies the X-Forwarded-* headers, each on its own: a header that is
// missing, too short or malformed leaves its fact as it was.
func (f *Fix) applyXForwarded(r *http.Request, e *effective) {
	if v, ok := f.pick(r, hdrFor, f.cfg.XFor, "x_for"); ok {
		if n, err := parseNode(v); err != nil {
			f.debug(r, hdrFor, v, err.Error())
		} else {
			e.client, e.clientOK, e.trusted = n, true, true
		}
	}
	if v, ok := f.pick(r, hdrProto, f.cfg.XProto, "x_proto"); ok {
		if s, err := parseProto(v); err != nil {
			f.debug(r, hdrProto, v, err.Error())
		} else {
			e.scheme, e.trusted = s, true
		}
	}
	if v, ok := f.pick(r, hdrHost, f.cfg.XHost, "x_host"); ok {
		if h, err := parseHost(v); err != nil {
			f.debug(r, hdrHost, v, err.Error())
		} else {
			e.host, e.hostOK, e.trusted = h, true, true
		}
	}
	if v, ok := f.pick(r, hdrPort, f.cfg.XPort, "x_port"); ok {
		port, err := parsePort(v)
		switch {
		case err != nil:
			f.debug(r, hdrPort, v, err.Error())
		case !e.hostOK:
			f.debug(r, hdrPort, v, "no valid host to apply the port to")
		default:
			e.host.port, e.trusted = port, true
		}
	}
	if v, ok := f.pick(r, hdrPrefix, f.cfg.XPrefix, "x_prefix"); ok {
		if p, err := parsePrefix(v); err != nil {
			f.debug(r, hdrPrefix, v, err.Error())
		} else {
			e.prefix, e.trusted = p, true
		}
	}
}

// pick returns the n-th value from the right of header, logging why there is none when
// the header is present.
func (f *Fix) pick(r *http.Request, header string, n int, key string) (string, bool) {
	if n <= 0 {
		return "", false
	}
	values := r.Header.Values(header)
	if len(values) == 0 {
		return "", false
	}
	v, ok := pickFromRight(values, n)
	if !ok {
		f.debug(r, header, strings.Join(values, ","), fmt.Sprintf("fewer values than %s=%d", key, n))
	}
	return v, ok
}

// applyForwarded applies the for, proto and host parameters of the n-th element from the
// right of the Forwarded header. A malformed header is ignored as a whole; an invalid
// parameter value is ignored on its own.
func (f *Fix) applyForwarded(r *http.Request, e *effective) {
	values := r.Header.Values(hdrForwarded)
	if len(values) == 0 {
		return
	}
	elems, err := parseForwarded(values)
	if err != nil {
		f.debug(r, hdrForwarded, strings.Join(values, ","), err.Error())
		return
	}
	n := f.cfg.Forwarded
	if len(elems) < n {
		f.debug(r, hdrForwarded, strings.Join(values, ","), fmt.Sprintf("fewer elements than forwarded=%d", n))
		return
	}
	elem := elems[len(elems)-n]
	if v, ok := elem.get("for"); ok {
		if c, err := parseNode(v); err != nil {
			f.debug(r, hdrForwarded, v, "for: "+err.Error())
		} else {
			e.client, e.clientOK, e.trusted = c, true, true
		}
	}
	if v, ok := elem.get("proto"); ok {
		if s, err := parseProto(v); err != nil {
			f.debug(r, hdrForwarded, v, "proto: "+err.Error())
		} else {
			e.scheme, e.trusted = s, true
		}
	}
	if v, ok := elem.get("host"); ok {
		if h, err := parseHost(v); err != nil {
			f.debug(r, hdrForwarded, v, "host: "+err.Error())
		} else {
			e.host, e.hostOK, e.trusted = h, true, true
		}
	}
}

// maxLoggedValue bounds the part of a client-controlled value written to the log.
const maxLoggedValue = 256

// debug logs, at Debug level only (clients control these values), that a forwarding
// header or value was ignored and why.
func (f *Fix) debug(r *http.Request, header, value, why string) {
	ctx := r.Context()
	if !f.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if len(value) > maxLoggedValue {
		value = value[:maxLoggedValue] + "..."
	}
	f.logger.LogAttrs(ctx, slog.LevelDebug, "proxyfix: forwarding header ignored",
		slog.String("header", header),
		slog.String("reason", why),
		slog.String("value", strings.ToValidUTF8(value, "\uFFFD")),
		slog.String("remote_addr", r.RemoteAddr),
	)
}
