package broker

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

// UpstreamConfig is one app behind the broker's reverse proxy. A request
// goes to the most specific upstream that matches it (see
// docs/integrations.md): one for its exact host first, then one for a
// domain suffix (the longest first), then one for any host; among those,
// the longest path prefix wins.
type UpstreamConfig struct {
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
}

// Time limits of the connections to upstreams. A WebSocket, once
// switched, has none: it lasts until either side closes it.
const (
	upstreamDialTimeout     = 10 * time.Second
	upstreamTLSTimeout      = 10 * time.Second
	upstreamResponseTimeout = 60 * time.Second // until the response header, like nginx's proxy_read_timeout
	upstreamIdleTimeout     = 90 * time.Second
)

// upstream is a validated UpstreamConfig with its reverse proxy.
type upstream struct {
	host     access.HostPattern // zero: any host
	path     string             // "/" or a clean path without a trailing slash
	audience string
	strip    bool
	proxy    *httputil.ReverseProxy
}

// upstreamConfigs returns the configured upstreams, the single upstream
// shorthand expanded to one entry for "/".
func (c Config) upstreamConfigs() []UpstreamConfig {
	if c.Upstream != "" {
		return []UpstreamConfig{{Path: "/", URL: c.Upstream}}
	}
	return c.Upstreams
}

// upstreamProblems validates upstreams; each message starts with the
// field's YAML path. (The shorthand's URL is checked with the other
// top-level settings.)
func (c Config) upstreamProblems() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Upstream != "" && len(c.Upstreams) > 0 {
		add("upstream", "cannot be combined with upstreams (make it an upstreams entry with path: /)")
	}
	seen := map[[2]string]int{}
	for i, u := range c.Upstreams {
		field := fmt.Sprintf("upstreams[%d].", i)
		if !validUpstreamPath(u.Path) {
			add(field+"path", "%q must be a clean absolute path such as /api/ (no //, . or .. segments, ?, #, %%, \\ or spaces)", u.Path)
		}
		host, err := access.ParseHostPattern(u.Host)
		if u.Host != "" && err != nil {
			add(field+"host", "%q %v", u.Host, err)
		}
		if t, err := url.Parse(u.URL); err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" ||
			t.User != nil || t.RawQuery != "" || t.Fragment != "" {
			add(field+"url", "%q must be an absolute http(s) URL without userinfo, query or fragment", u.URL)
		} else if p := urlPortProblem(t); p != "" {
			add(field+"url", "%q: %s", u.URL, p)
		}
		key := [2]string{host.String(), cleanUpstreamPath(u.Path)}
		if j, dup := seen[key]; dup {
			add(field+"path", "upstreams[%d] already serves this host and path", j)
		}
		seen[key] = i
	}
	return errs
}

// validUpstreamPath accepts "/" and clean absolute paths, with or without
// a trailing slash.
func validUpstreamPath(p string) bool {
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

func cleanUpstreamPath(p string) string {
	if p == "/" {
		return p
	}
	return strings.TrimSuffix(p, "/")
}

// newUpstreams builds every upstream of a validated configuration with one
// shared transport, most specific first (see UpstreamConfig).
func (s *Server) newUpstreams(cfgs []UpstreamConfig) []*upstream {
	tr := newUpstreamTransport()
	ups := make([]*upstream, 0, len(cfgs))
	for _, c := range cfgs {
		target, _ := url.Parse(c.URL)              // validated
		host, _ := access.ParseHostPattern(c.Host) // validated; "" is the zero pattern
		up := &upstream{host: host, path: cleanUpstreamPath(c.Path), audience: c.Audience, strip: c.StripPrefix}
		if up.audience == "" {
			up.audience = c.URL
		}
		up.proxy = s.newReverseProxy(up, target, tr)
		ups = append(ups, up)
	}
	slices.SortStableFunc(ups, func(a, b *upstream) int {
		return cmp.Or(cmp.Compare(a.hostRank(), b.hostRank()), cmp.Compare(len(b.host.String()), len(a.host.String())), cmp.Compare(len(b.path), len(a.path)))
	})
	return ups
}

// newUpstreamTransport is the transport to every upstream: bounded dial,
// TLS handshake and wait for the response header; HTTP/2 to https
// upstreams that offer it, and HTTP/1.1 for protocol switches
// (WebSockets), which net/http arranges by itself. Environment proxies
// (HTTP_PROXY) are not used: the broker connects to its apps directly.
func newUpstreamTransport() *http.Transport {
	d := &net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   upstreamTLSTimeout,
		ResponseHeaderTimeout: upstreamResponseTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       upstreamIdleTimeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}
}

// hostRank orders host-specific upstreams before host-less ones.
func (u *upstream) hostRank() int {
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
func (u *upstream) matches(host, p string) bool {
	if u.host != (access.HostPattern{}) && !u.host.Match(host) {
		return false
	}
	return u.path == "/" || p == u.path || strings.HasPrefix(p, u.path+"/")
}

// matchUpstream returns the upstream for r, or nil.
func (s *Server) matchUpstream(r *http.Request) *upstream {
	host := access.Hostname(r.Host)
	for _, u := range s.upstreams {
		if u.matches(host, r.URL.Path) {
			return u
		}
	}
	return nil
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
