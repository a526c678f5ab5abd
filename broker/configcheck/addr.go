package configcheck

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// The checks of a configuration's network addresses, so that an address
// the server could not bind or dial fails `check` and start-up, not the
// first request.

// ListenProblem says what is wrong with addr as an address to listen on
// ("" when nothing): host:port, the host optional (every interface), the
// port a number from 0 (any free port) to 65535.
func ListenProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (such as 127.0.0.1:4180 or :4180)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		return fmt.Sprintf("%q: the port %q is not a number from 1 to 65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && !validListenHost(host) {
		return fmt.Sprintf("%q: %q is not an IP address or host name", addr, host)
	}
	return ""
}

// validListenHost accepts a DNS name such as localhost.
func validListenHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// URLPortProblem says what is wrong with the port of u, a URL to dial ("":
// none, or 1-65535).
func URLPortProblem(u *url.URL) string {
	p := u.Port()
	if p == "" {
		return ""
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("the port %q is not a number from 1 to 65535", p)
	}
	return ""
}
