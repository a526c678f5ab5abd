package basicauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Problems checks basic_auth_paths: each path of a password provider is a
// clean path outside the broker's own routes, and leads to one provider
// only.
func Problems(cfgs []providers.Config) []error {
	var errs []error
	owner := map[string]int{}
	for i, c := range cfgs {
		if !c.SignsInWithPassword() {
			continue
		}
		for j, p := range c.BasicAuthPaths {
			if err := checkPath(p); err != nil {
				errs = append(errs, fmt.Errorf("providers[%d].basic_auth_paths[%d]: %q %w", i, j, p, err))
			}
			if k, dup := owner[p]; dup && k != i {
				errs = append(errs, fmt.Errorf("providers[%d].basic_auth_paths[%d]: %q is already a Basic path of providers[%d]", i, j, p, k))
				continue
			}
			owner[p] = i
		}
	}
	return errs
}

// checkPath accepts an absolute, clean path outside the broker's own
// /oauth2/ routes: "/api/" (the subtree) or "/metrics" (that path).
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return errors.New("must start with /")
	case strings.ContainsAny(p, "?#") || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("must be a path without query, fragment, spaces or control characters")
	case strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") || strings.Contains(p, "//"):
		return errors.New("must be a clean path (no ., .. or //)")
	case p == "/oauth2" || strings.HasPrefix(p, "/oauth2/"):
		return errors.New("must not be under /oauth2/, the broker's own routes")
	}
	return nil
}

// Warnings: Basic sends the password with every request, so over an http
// public_url it is refused except on loopback.
func Warnings(publicURL string, cfgs []providers.Config) []string {
	for _, p := range cfgs {
		if len(p.BasicAuthPaths) > 0 && strings.HasPrefix(publicURL, "http://") {
			return []string{"providers: basic_auth_paths are set but public_url is http: HTTP Basic is refused over http except on loopback"}
		}
	}
	return nil
}
