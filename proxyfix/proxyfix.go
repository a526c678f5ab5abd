// Package proxyfix decides the effective transport facts of a request (scheme, host, port,
// path prefix and client address) from reverse-proxy headers, trusting them only through
// explicit hop counts, with the semantics of Werkzeug's ProxyFix
// (https://werkzeug.palletsprojects.com/en/stable/middleware/proxy_fix/).
//
// For a count N > 0 the N-th value from the right of the header is used: the right-most
// value was added by the proxy closest to the broker, the one before it by the next proxy,
// and so on. Values further left were sent by the client and are never used. When a header
// has fewer than N values, or the chosen value is malformed, the header is ignored as a
// whole and the facts of the connection stand. Count 0 (the default) ignores a header.
// Config.Forwarded reads the RFC 7239 Forwarded header the same way, by elements
// (https://www.rfc-editor.org/rfc/rfc7239#section-4).
//
// The zero Config trusts nothing, so a broker exposed directly to clients is safe by
// default. Handler is the only writer of the facts and FromRequest the only reader;
// downstream code never looks at X-Forwarded-* or Forwarded itself.
package proxyfix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
)

// maxHops is the largest count Config accepts for any header. Real chains are one to three
// proxies long; a larger count is almost certainly a mistake that trusts client values.
const maxHops = 10

// Config says how many trusted proxies set each forwarding header. It is plain data,
// decoded from the broker's YAML under `trusted_proxies:`; every field defaults to 0 /
// empty, which trusts no header at all.
//
// A count must equal the number of values that trusted proxies put at the right end of the
// header. A count higher than the real chain lets clients choose the value again.
type Config struct {
	// XFor is the number of proxies appending to X-Forwarded-For; it sets the client address.
	XFor int `yaml:"x_for"`
	// XProto is the number of proxies setting X-Forwarded-Proto; it sets the scheme.
	XProto int `yaml:"x_proto"`
	// XHost is the number of proxies setting X-Forwarded-Host; it sets the host (and the
	// port, when the value has one).
	XHost int `yaml:"x_host"`
	// XPort is the number of proxies setting X-Forwarded-Port; it replaces the port of the
	// effective host, after X-Forwarded-Host.
	XPort int `yaml:"x_port"`
	// XPrefix is the number of proxies setting X-Forwarded-Prefix; it sets the path prefix
	// under which the broker is mounted. The proxy must strip the prefix from the path.
	XPrefix int `yaml:"x_prefix"`
	// Forwarded is the number of proxies appending an element to the RFC 7239 Forwarded
	// header; its for, proto and host parameters are used. When it is > 0 every X-Forwarded
	// count must be 0: one chain speaks one dialect.
	Forwarded int `yaml:"forwarded"`
	// From optionally lists the CIDRs (a bare IP means /32 or /128) of the direct peers
	// allowed to send forwarding headers. When it is not empty and the peer's address is
	// outside all of them, no header is honoured. It does not replace the counts: a client
	// that can reach a listed proxy can still send headers through it.
	From []string `yaml:"from"`
}

// Validate reports every problem of c at once (joined with errors.Join). Each error starts
// with the YAML key of its field, relative to `trusted_proxies`.
func (c Config) Validate() error {
	var errs []error
	for _, k := range c.counts() {
		if k.n < 0 || k.n > maxHops {
			errs = append(errs, fmt.Errorf("%s: must be between 0 and %d, got %d", k.key, maxHops, k.n))
		}
	}
	if c.Forwarded > 0 {
		var mixed []string
		for _, k := range c.counts()[:5] {
			if k.n > 0 {
				mixed = append(mixed, k.key)
			}
		}
		if len(mixed) > 0 {
			errs = append(errs, fmt.Errorf("forwarded: cannot be combined with %s (use either RFC 7239 Forwarded or X-Forwarded-*)",
				strings.Join(mixed, ", ")))
		}
	}
	for i, s := range c.From {
		if _, ok := parseCIDR(s); !ok {
			errs = append(errs, fmt.Errorf("from[%d]: %q is not a CIDR or IP address", i, s))
		}
	}
	return errors.Join(errs...)
}

// Enabled reports whether any count is > 0, that is whether any header can be trusted.
func (c Config) Enabled() bool {
	for _, k := range c.counts() {
		if k.n > 0 {
			return true
		}
	}
	return false
}

type countKey struct {
	key string
	n   int
}

// counts lists the counts with their YAML keys; the X-Forwarded ones come first.
func (c Config) counts() []countKey {
	return []countKey{
		{"x_for", c.XFor}, {"x_proto", c.XProto}, {"x_host", c.XHost},
		{"x_port", c.XPort}, {"x_prefix", c.XPrefix}, {"forwarded", c.Forwarded},
	}
}

// Fix is the middleware built from a validated Config. It is immutable and safe for
// concurrent use.
type Fix struct {
	cfg     Config
	enabled bool // cfg.Enabled(), asked on every request
	from    []netip.Prefix
	logger  *slog.Logger
}

// New validates cfg and returns the middleware builder. logger may be nil, then
// slog.Default() is used. Rejected header values are logged at Debug level only, since
// clients control them.
func New(cfg Config, logger *slog.Logger) (*Fix, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxyfix: invalid config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := &Fix{cfg: cfg, enabled: cfg.Enabled(), logger: logger}
	f.cfg.From = append([]string(nil), cfg.From...)
	for _, s := range cfg.From {
		p, _ := parseCIDR(s)
		f.from = append(f.from, p)
	}
	return f, nil
}

// Handler returns middleware that computes the Facts of each request before next runs,
// stores them in the request context for FromRequest, and hands next a shallow copy of the
// request with
//   - Host set to Facts.Host (normalized: lower case, default port omitted), and
//   - RemoteAddr set to "clientIP:port" ("[ip]:port" for IPv6, port 0 when unknown) when
//     a forwarded client address was applied; an obfuscated RFC 7239 identifier gives
//     "_hidden:0" or "unknown:0".
//
// URL.Scheme stays untouched: on a server request it is empty and setting it would make
// r.URL absolute and change how it prints and proxies; read Facts.Scheme instead. Headers
// are not removed. Handler never fails a request because of header content. When the
// request already carries Facts (the middleware was applied twice) it passes it on as is.
func (f *Fix) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(ContextKey{}).(*Facts); ok {
			next.ServeHTTP(w, r)
			return
		}
		facts, remoteAddr := f.Resolve(r)
		r2 := r.WithContext(NewContext(r.Context(), &facts))
		if facts.Host != "" {
			r2.Host = facts.Host
		}
		if remoteAddr != "" {
			r2.RemoteAddr = remoteAddr
		}
		next.ServeHTTP(w, r2)
	})
}

// Resolve is Handler's work for one request, for a caller that derives the
// request's context and copy itself (one copy for several middlewares): the
// Facts, and the RemoteAddr the request should carry ("" to keep it). Put
// the Facts in the context with NewContext and set the copy's Host to
// Facts.Host, as Handler does.
func (f *Fix) Resolve(r *http.Request) (Facts, string) { return f.resolve(r) }

// NewContext returns a context derived from ctx that carries facts for
// FromRequest. facts must not change afterwards.
func NewContext(ctx context.Context, facts *Facts) context.Context {
	return context.WithValue(ctx, ContextKey{}, facts)
}

// ContextKey is the key under which NewContext stores the *Facts. A caller
// that has its own context type for a request (one value for all it keeps)
// may answer it from its Value method instead of calling NewContext.
type ContextKey struct{}

// Facts are the effective transport facts of one request.
type Facts struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is host[:port] as it should appear in URLs: lower case, IPv6 in brackets, the
	// port omitted when it is the scheme's default. When the connection's Host header is
	// not a valid host and no forwarded host was applied, it is that header unchanged.
	Host string
	// Prefix is "" or a clean absolute path without trailing slash, such as "/auth".
	Prefix string
	// ClientIP is the client's address (IPv4-mapped IPv6 addresses are unmapped). It is
	// the zero Addr when the trusted value is an RFC 7239 obfuscated identifier or
	// "unknown", or when the connection's RemoteAddr is not an IP (Unix socket).
	ClientIP netip.Addr
	// ClientNode is the client as trusted: ClientIP in text form, an obfuscated identifier
	// such as "_hidden", "unknown", or the connection's RemoteAddr when it is not an IP.
	ClientNode string
	// Trusted reports whether any forwarded value was applied.
	Trusted bool
	// Original keeps the facts of the connection, untouched, for logs.
	Original Original
}

// Original are the request facts as the connection presented them.
type Original struct {
	RemoteAddr string // r.RemoteAddr
	Host       string // r.Host
	Scheme     string // "https" when r.TLS != nil, else "http"
	// Peer is RemoteAddr's IP (IPv4-mapped addresses unmapped, no zone);
	// the zero Addr when RemoteAddr is not an IP (Unix socket).
	Peer netip.Addr
}

// BaseURL returns scheme://host followed by the prefix, without trailing slash, such as
// "https://sso.example.com/auth".
func (f Facts) BaseURL() string {
	return f.Scheme + "://" + f.Host + f.Prefix
}

// PeerListed reports whether the direct peer of r's connection (before any
// forwarding header was applied) is inside Config.From. An empty From lists
// nobody. Code that believes other request-describing headers of a proxy
// (the broker's forward-auth endpoint) asks this: hop counts alone cannot
// vouch for headers that proxies set rather than append to.
func (f *Fix) PeerListed(r *http.Request) bool {
	if facts, ok := r.Context().Value(ContextKey{}).(*Facts); ok {
		if facts.Original.Peer.IsValid() {
			return f.Listed(facts.Original.Peer)
		}
		return f.listed(facts.Original.RemoteAddr) // Facts built without Peer
	}
	return f.listed(r.RemoteAddr)
}

// Listed reports whether peer (a direct peer's address, such as
// Facts.Original.Peer; IPv4-mapped addresses count as IPv4) is inside
// Config.From. The zero Addr never is.
func (f *Fix) Listed(peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	peer = peer.Unmap().WithZone("")
	for _, p := range f.from {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// ValidHost reports whether s is a host[:port] that this package would take
// from a forwarding header: a DNS name, an IPv4 address or a bracketed IPv6
// address, and a port from 1 to 65535; no userinfo, path, spaces or
// percent-encoding.
func ValidHost(s string) bool {
	_, err := parseHost(s)
	return err == nil
}

// FromRequest returns the Facts that Handler stored for r. When Handler did not run it
// returns the facts of the connection itself: https when r.TLS != nil, r.Host, no prefix
// and r.RemoteAddr, with Trusted false.
func FromRequest(r *http.Request) Facts {
	if f, ok := r.Context().Value(ContextKey{}).(*Facts); ok {
		return *f
	}
	return connFacts(r)
}

// connFacts returns the facts of the connection, trusting no header.
func connFacts(r *http.Request) Facts {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	facts := Facts{
		Scheme:   scheme,
		Host:     r.Host,
		Original: Original{RemoteAddr: r.RemoteAddr, Host: r.Host, Scheme: scheme},
	}
	if h, ok := parseHostOK(r.Host); ok {
		facts.Host = h.formatAs(scheme, r.Host)
	}
	if ip, ok := peerAddr(r.RemoteAddr); ok {
		facts.ClientIP, facts.Original.Peer = ip, ip
		facts.ClientNode = nodeText(ip, r.RemoteAddr)
	} else {
		facts.ClientNode = r.RemoteAddr
	}
	return facts
}

// parseCIDR parses a CIDR or a bare IP (as a single-address prefix). IPv4-mapped IPv6
// prefixes are turned into IPv4 ones, since peer addresses are compared unmapped.
func parseCIDR(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// peerAddr returns the IP of a RemoteAddr ("ip:port", "[ip]:port" or a bare IP), unmapped
// and without zone.
// nodeText is ip as text, taken from remoteAddr (ip:port, as net/http
// sets it) without an allocation when remoteAddr already holds the
// canonical form, as it does for IPv4.
func nodeText(ip netip.Addr, remoteAddr string) string {
	if ip.Is4() {
		if host, _, ok := strings.Cut(remoteAddr, ":"); ok && looksIPv4(host) {
			return host // parsed by netip: canonical
		}
	}
	return ip.String()
}

func peerAddr(remoteAddr string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
