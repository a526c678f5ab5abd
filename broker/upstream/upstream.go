// Package upstream is the way from the broker to the apps behind it: the
// upstreams, chosen by host and path (Set.Match); the reverse proxy to
// each, which writes what the broker relays (identity, forwarding headers,
// request ID) on the outgoing request and lets only WebSocket upgrades
// through; and the WebSocket tunnels of signed-in sessions, which close
// when their session ends (Tunnels); and the user's tokens an app asks for,
// their headers checked and written (Tokens).
//
// It decides nothing about access: the broker serves an upstream only to a
// request its access rules let through, and gives the proxy the identity
// to relay (Relay).
package upstream

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

// Config is one app behind the broker's reverse proxy. A request goes to
// the most specific upstream that matches it (see docs/integrations.md):
// one for its exact host first, then one for a domain suffix (the longest
// first), then one for any host; among those, the longest path prefix
// wins.
type Config struct {
	// Path is the path prefix the upstream serves, matched on whole
	// segments: "/api" and "/api/" both match /api, /api/ and /api/x, never
	// /apix. "/" matches every path. Required.
	Path string `yaml:"path"`
	// Host, when set, limits the upstream to requests for that host name:
	// exact ("app.example.com") or ".example.com" for the domain and its
	// subdomains, as in allowed_hosts. Default: any host.
	Host string `yaml:"host"`
	// URL is where requests go: an absolute http(s) URL; a path in it is
	// put in front of the request's path. Required.
	URL string `yaml:"url"`
	// Audience names the app in the signed assertion. Default: URL.
	Audience string `yaml:"audience"`
	// StripPrefix removes Path from the request path before forwarding
	// (/api/x reaches the app as /x) and adds it to X-Forwarded-Prefix.
	StripPrefix bool `yaml:"strip_prefix"`
	// Tokens are the user's tokens this app asks for (Relay.Tokens
	// writes them). Default: none.
	Tokens `yaml:",inline"`
}

// Tokens is which of the signed-in user's tokens an app receives, and in
// which header (docs/headers.md#tokens). Both are off by default.
type Tokens struct {
	// PassAccessToken is the header that carries the user's access token:
	// "Authorization" sends `Authorization: Bearer <token>`; any other
	// name (X-Forwarded-Access-Token, as oauth2-proxy calls it) the token
	// alone. For an API client signed in with a bearer token, that token.
	PassAccessToken string `yaml:"pass_access_token"`
	// PassIDToken is the header that carries the user's ID token, the same
	// way. Not sent for API clients (they have none).
	PassIDToken string `yaml:"pass_id_token"`
}

// Enabled reports whether t asks for a token.
func (t Tokens) Enabled() bool { return t.PassAccessToken != "" || t.PassIDToken != "" }

// Time limits of the connections to upstreams. A WebSocket, once
// switched, has none: it lasts until either side closes it.
const (
	dialTimeout     = 10 * time.Second
	tlsTimeout      = 10 * time.Second
	responseTimeout = 60 * time.Second // until the response header, like nginx's proxy_read_timeout
	idleTimeout     = 90 * time.Second
)

// Problems validates the upstreams entries; each message starts with the
// field's YAML path (upstreams[i].field).
func Problems(cfgs []Config) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	seen := map[[2]string]int{}
	for i, u := range cfgs {
		field := fmt.Sprintf("upstreams[%d].", i)
		if !validPath(u.Path) {
			add(field+"path", "%q must be a clean absolute path such as /api/ (no //, . or .. segments, ?, #, %%, \\ or spaces)", u.Path)
		}
		host, err := access.ParseHostPattern(u.Host)
		if u.Host != "" && err != nil {
			add(field+"host", "%q %v", u.Host, err)
		}
		if t, err := url.Parse(u.URL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" ||
			t.User != nil || t.RawQuery != "" || t.Fragment != "" {
			add(field+"url", "%q must be an absolute http(s) URL without userinfo, query or fragment", u.URL)
		} else if p := t.Port(); p != "" && !validPort(p) {
			add(field+"url", "%q: the port %q is not a number from 1 to 65535", u.URL, p)
		}
		key := [2]string{host.String(), cleanPath(u.Path)}
		if j, dup := seen[key]; dup {
			add(field+"path", "upstreams[%d] already serves this host and path", j)
		}
		seen[key] = i
	}
	return errs
}

// validPath accepts "/" and clean absolute paths, with or without a
// trailing slash.
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#%\\") {
		return false
	}
	for _, c := range []byte(p) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return p == "/" || path.Clean(p) == strings.TrimSuffix(p, "/")
}

func cleanPath(p string) string {
	if p == "/" {
		return p
	}
	return strings.TrimSuffix(p, "/")
}

// Set is the upstreams of one configuration, most specific first. A nil
// *Set has none.
type Set struct {
	ups []*Upstream
}

// Upstream is a validated Config with its reverse proxy.
type Upstream struct {
	host     access.HostPattern // zero: any host
	path     string             // "/" or a clean path without a trailing slash
	audience string
	strip    bool
	tokens   Tokens
	proxy    *httputil.ReverseProxy
}

// New builds every upstream of validated configurations (Problems) with one
// shared transport, most specific first (see Config); relay is what their
// proxies put on each request.
func New(cfgs []Config, relay Relay) *Set {
	tr := newTransport()
	ups := make([]*Upstream, 0, len(cfgs))
	for _, c := range cfgs {
		target, _ := url.Parse(c.URL)              // validated
		host, _ := access.ParseHostPattern(c.Host) // validated; "" is the zero pattern
		up := &Upstream{host: host, path: cleanPath(c.Path), audience: c.Audience, strip: c.StripPrefix, tokens: c.Tokens}
		if up.audience == "" {
			up.audience = c.URL
		}
		up.proxy = newReverseProxy(up, target, tr, relay)
		ups = append(ups, up)
	}
	slices.SortStableFunc(ups, func(a, b *Upstream) int {
		return cmp.Or(cmp.Compare(a.hostRank(), b.hostRank()), cmp.Compare(len(b.host.String()), len(a.host.String())), cmp.Compare(len(b.path), len(a.path)))
	})
	return &Set{ups: ups}
}

// Len is the number of upstreams (0: forward-auth only).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ups)
}

// Match returns the upstream for r, or nil.
func (s *Set) Match(r *http.Request) *Upstream {
	if s == nil {
		return nil
	}
	host := access.Hostname(r.Host)
	for _, u := range s.ups {
		if u.matches(host, r.URL.Path) {
			return u
		}
	}
	return nil
}

// CloseIdle closes the idle connections of the upstreams' transport (a
// replaced configuration's); requests in flight keep theirs.
func (s *Set) CloseIdle() {
	if s == nil {
		return
	}
	for _, up := range s.ups {
		if t, ok := up.proxy.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}

// Audience names the upstream's app in the signed assertion.
func (u *Upstream) Audience() string { return u.audience }

// ServeHTTP proxies r to the upstream. The caller has decided that r may
// reach it.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.proxy.ServeHTTP(w, r) }

// newTransport is the transport to every upstream: bounded dial, TLS
// handshake and wait for the response header; HTTP/2 to https upstreams
// that offer it, and HTTP/1.1 for protocol switches (WebSockets), which
// net/http arranges by itself. Environment proxies (HTTP_PROXY) are not
// used: the broker connects to its apps directly.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: responseTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       idleTimeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}
}

// hostRank orders host-specific upstreams before host-less ones.
func (u *Upstream) hostRank() int {
	switch {
	case u.host == access.HostPattern{}:
		return 2
	case u.host.IsDomain():
		return 1
	}
	return 0
}

// matches reports whether the upstream serves a request for host (a name
// without port, access.Hostname) and the path p.
func (u *Upstream) matches(host, p string) bool {
	if u.host != (access.HostPattern{}) && !u.host.Match(host) {
		return false
	}
	return u.path == "/" || p == u.path || strings.HasPrefix(p, u.path+"/")
}

// stripPath removes a matched prefix from the outbound URL's path (and
// from its escaped form when that still starts with it; otherwise the
// escaped form is rebuilt from the path).
func stripPath(u *url.URL, prefix string) {
	u.Path = strings.TrimPrefix(u.Path, prefix)
	if rp, ok := strings.CutPrefix(u.RawPath, prefix); ok && rp != "" {
		u.RawPath = rp
	} else {
		u.RawPath = ""
	}
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
}

// validPort accepts a port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}
