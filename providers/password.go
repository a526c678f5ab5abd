package providers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// What the providers whose users sign in with a password on the broker's
// own form (types local and ldap) have in common.

// PasswordAuthenticator is the optional capability of a provider whose users
// sign in with a username and password checked by the broker itself (types
// local and ldap), found by type assertion. Such a provider's AuthCodeURL leads to
// the broker's own login form, and its Exchange always fails: there is no
// callback.
type PasswordAuthenticator interface {
	// Authenticate checks a username and password. It fails with
	// ErrInvalidCredentials, whichever of the two was wrong, and takes as
	// long for an unknown user as for a known one. Rate limiting is the
	// caller's job.
	Authenticate(ctx context.Context, username, password string) (*Result, error)
}

// ErrInvalidCredentials: the username or the password is wrong. It never
// says which.
var ErrInvalidCredentials = errors.New("providers: invalid username or password")

// ErrNoCallback: a password provider (local, ldap) was asked to finish a
// redirect flow.
var ErrNoCallback = errors.New("providers: a password provider has no callback; its users sign in on the broker's form")

// FormLink is the broker's login form of the password provider id for
// this login: FormURL, which the broker hands over, with the state and the
// login hint as the username to fill in.
func (req AuthRequest) FormLink(providerID string) (string, error) {
	if req.FormURL == "" {
		return "", fmt.Errorf("providers: %s: no login form URL: the broker serves a password provider's form", providerID)
	}
	q := url.Values{"state": {req.State}}
	if req.LoginHint != "" {
		q.Set("username", req.LoginHint)
	}
	return req.FormURL + "?" + q.Encode(), nil
}

// passwordProviderProblems checks what the providers whose users sign in
// with a password (typ local or ldap) have in common: none of the redirect
// providers' settings, and only claims.group_prefix and
// claims.static_groups. The broker checks the Basic paths, its routes.
func (c Config) passwordProviderProblems(typ string) []error {
	var errs []error
	unused := func(key string, set bool) {
		if set {
			errs = append(errs, fmt.Errorf("%s: is not used by providers of type %s", key, typ))
		}
	}
	unused("issuer", c.Issuer != "")
	unused("authorization_endpoint", c.AuthorizationEndpoint != "")
	unused("token_endpoint", c.TokenEndpoint != "")
	unused("userinfo_endpoint", c.UserinfoEndpoint != "")
	unused("client_id", c.ClientID != "")
	unused("client_secret", c.ClientSecret != "")
	unused("scopes", len(c.Scopes) > 0)
	unused("token_endpoint_auth_method", c.TokenEndpointAuthMethod != "")
	unused("private_key_file", c.PrivateKeyFile != "")
	unused("private_key_id", c.PrivateKeyID != "")
	unused("userinfo", c.Userinfo != "")
	unused("id_token_signing_algs", len(c.IDTokenSigningAlgs) > 0)
	unused("require_iss_parameter", c.RequireIssParameter)
	unused("auth_params", len(c.AuthParams) > 0)
	cl := c.Claims
	unused("claims.source", cl.Source != "")
	unused("claims.subject", cl.Subject != "")
	unused("claims.username", cl.Username != "")
	unused("claims.name", cl.Name != "")
	unused("claims.email", cl.Email != "")
	unused("claims.groups", cl.Groups != "")
	unused("claims.extra_groups", cl.ExtraGroups != nil)
	unused("claims.insecure_assume_email_verified", cl.InsecureAssumeEmailVerified)
	for i, g := range cl.StaticGroups {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("claims.static_groups[%d]: is empty", i))
		}
	}
	return errs
}

// localFieldsUnused reports the settings of "local" providers on a provider
// of another type (basic_auth_paths is shared with "ldap").
func (c Config) localFieldsUnused() []error {
	var errs []error
	for _, f := range []struct {
		key string
		set bool
	}{
		{"htpasswd_file", c.HtpasswdFile != ""}, {"groups_file", c.GroupsFile != ""},
		{"groups", len(c.Groups) > 0},
	} {
		if f.set {
			errs = append(errs, fmt.Errorf("%s: is only used by providers of type local", f.key))
		}
	}
	if len(c.BasicAuthPaths) > 0 && c.Type != TypeLDAP {
		errs = append(errs, errors.New("basic_auth_paths: is only used by providers of type local and ldap"))
	}
	return errs
}
