package assertion

import (
	"net/url"
	"strings"
)

// SignInURL is the broker's sign-in page, which sends the browser back to
// rd afterwards: broker is "" when the broker's pages are under /oauth2/ of
// the app's own origin (reverse-proxy mode, or a proxy that routes them
// there), else the broker's base URL (https://auth.example.com); rd is a
// path on the broker's origin, or an absolute URL on a host the broker's
// redirect_hosts allow. The same as the Python package's login_url.
func SignInURL(broker, rd string) string {
	return strings.TrimSuffix(broker, "/") + "/oauth2/sign_in?rd=" + url.QueryEscape(rd)
}

// SignOutURL is the broker's sign-out page; with rd, it returns there
// afterwards. The same as the Python package's logout_url.
func SignOutURL(broker, rd string) string {
	u := strings.TrimSuffix(broker, "/") + "/oauth2/sign_out"
	if rd != "" {
		u += "?rd=" + url.QueryEscape(rd)
	}
	return u
}
