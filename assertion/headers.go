package assertion

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The identity headers the broker relays next to the assertion
// (docs/headers.md).
const (
	HeaderUser              = "X-Auth-Request-User"
	HeaderProvider          = "X-Auth-Request-Provider"
	HeaderEmail             = "X-Auth-Request-Email"
	HeaderPreferredUsername = "X-Auth-Request-Preferred-Username"
	HeaderName              = "X-Auth-Request-Name"
	HeaderGroups            = "X-Auth-Request-Groups"
	HeaderGroupsIncomplete  = "X-Auth-Request-Groups-Incomplete"
)

var identityHeaders = []string{HeaderUser, HeaderProvider, HeaderEmail, HeaderPreferredUsername, HeaderName,
	HeaderGroups, HeaderGroupsIncomplete}

// FromHeaders reads the identity from the broker's plain identity headers,
// decoded as the broker encodes them (percent-encoding; groups split on ","
// first). It returns nil and no error when there is none (a public page),
// and an error when the headers do not name a well-formed user
// ("<provider>:<sub>" with its provider), so that the caller refuses the
// request. Only Issuer, Audience and the times stay empty.
//
// Trust these headers only when every request reaches the app through the
// broker, which removes a client's own: anyone who reaches the app directly
// can send them. Verify the assertion otherwise.
func FromHeaders(h http.Header) (*Claims, error) {
	present := false
	for _, name := range identityHeaders {
		if _, ok := h[name]; ok {
			present = true
		}
	}
	if !present {
		return nil, nil
	}
	var errs []error
	value := func(name string) string {
		v, err := url.PathUnescape(h.Get(name))
		switch {
		case err != nil:
		case !utf8.ValidString(v):
			err = errors.New("not UTF-8")
		case strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			err = errors.New("a control character")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("assertion: %s: %w", name, err))
		}
		return v
	}
	c := &Claims{User: value(HeaderUser), Provider: value(HeaderProvider), Email: value(HeaderEmail),
		PreferredUsername: value(HeaderPreferredUsername), Name: value(HeaderName)}
	if g := h.Get(HeaderGroups); g != "" {
		for _, v := range strings.Split(g, ",") {
			d, err := url.PathUnescape(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("assertion: %s: %w", HeaderGroups, err))
			}
			c.Groups = append(c.Groups, d)
		}
	}
	switch h.Get(HeaderGroupsIncomplete) {
	case "true":
		c.GroupsIncomplete = true
	case "":
	default:
		errs = append(errs, fmt.Errorf("assertion: %s is not \"true\"", HeaderGroupsIncomplete))
	}
	if sub, ok := strings.CutPrefix(c.User, c.Provider+":"); c.Provider == "" || !ok || sub == "" {
		errs = append(errs, fmt.Errorf("assertion: %s %q is not <provider>:<sub> of %s %q", HeaderUser, c.User, HeaderProvider, c.Provider))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}
