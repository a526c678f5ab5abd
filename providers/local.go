package providers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// PasswordAuthenticator is the optional capability of a provider whose users
// sign in with a username and password checked by the broker itself (type
// "local"), found by type assertion. Such a provider's AuthCodeURL leads to
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

// errNoCallback: a password provider (local, ldap) was asked to finish a
// redirect flow.
var errNoCallback = errors.New("providers: a password provider has no callback; its users sign in on the broker's form")

// localProvider authenticates static users from a bcrypt htpasswd file, with
// groups from an Apache group file or the configuration. The files are read
// when it is opened; changes need a restart.
type localProvider struct {
	cfg     Config
	opts    Options
	users   *localUsers
	loadErr error  // the files changed and broke between Validate and Open
	dummy   []byte // a bcrypt hash of a random password, at the users' usual cost
	// compare is bcrypt.CompareHashAndPassword; a seam for tests.
	compare func(hash, password []byte) error
}

var (
	_ Provider              = (*localProvider)(nil)
	_ PasswordAuthenticator = (*localProvider)(nil)
)

// Local is the type "local".
var Local = Type{Name: TypeLocal, Check: Config.validateLocal, Open: openLocal, Reopen: true,
	Probe: func(_ context.Context, c Config, _ *http.Client, r *Report) {
		r.add(checkHtpasswd, SeverityOK, "local accounts: nothing to reach; the configuration check read %s", c.HtpasswdFile)
	}}

func openLocal(cfg Config, opts Options) Provider {
	p := &localProvider{cfg: cfg, opts: opts, compare: bcrypt.CompareHashAndPassword}
	users, errs := loadLocalUsers(cfg)
	if len(errs) > 0 {
		// Validate read the same files a moment ago: they changed since.
		p.loadErr = errors.Join(errs...)
		opts.Logger.Error("local provider: cannot load its users", "provider", cfg.ID, "error", p.loadErr)
		return p
	}
	p.users = users
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomPassword()), users.cost)
	if err != nil {
		p.loadErr = fmt.Errorf("providers: %s: dummy hash: %w", cfg.ID, err)
		return p
	}
	p.dummy = dummy
	if users.cost < 10 {
		opts.Logger.Warn("local provider: bcrypt cost below 10 makes leaked hashes cheap to crack; recreate them with htpasswd -B -C 12",
			"provider", cfg.ID, "cost", users.cost)
	}
	if len(users.costs) > 1 {
		opts.Logger.Warn("local provider: the htpasswd file mixes bcrypt costs, so response times tell users of another cost apart from unknown ones",
			"provider", cfg.ID, "usual_cost", users.cost)
	}
	return p
}

func (p *localProvider) ID() string   { return p.cfg.ID }
func (p *localProvider) Name() string { return p.cfg.displayName() }

// Status: available unless the files failed to load.
func (p *localProvider) Status() Status {
	if p.loadErr != nil {
		return Status{Reason: "user list unreadable"}
	}
	return Status{Available: true}
}

// AuthCodeURL returns the broker's login form for this provider
// (req.FormURL) with the state, and the login hint as the username to
// fill in.
func (p *localProvider) AuthCodeURL(_ context.Context, req AuthRequest) (string, error) {
	if p.loadErr != nil {
		return "", &UnavailableError{Provider: p.cfg.ID, Err: p.loadErr}
	}
	return formURL(p.cfg.ID, req)
}

// formURL is the broker's login form of the password provider id
// (req.FormURL, which the broker hands over), for the pending login req.
func formURL(providerID string, req AuthRequest) (string, error) {
	if req.FormURL == "" {
		return "", fmt.Errorf("providers: %s: no login form URL: the broker serves a password provider's form", providerID)
	}
	q := url.Values{"state": {req.State}}
	if req.LoginHint != "" {
		q.Set("username", req.LoginHint)
	}
	return req.FormURL + "?" + q.Encode(), nil
}

// Exchange always fails: a local provider has no callback.
func (p *localProvider) Exchange(context.Context, Callback) (*Result, error) {
	return nil, fmt.Errorf("providers: %s: %w", p.cfg.ID, errNoCallback)
}

// Authenticate implements PasswordAuthenticator. Exactly one bcrypt
// comparison runs per call: for an unknown user against a dummy hash of the
// usual cost, so the response time does not tell which usernames exist.
func (p *localProvider) Authenticate(_ context.Context, username, password string) (*Result, error) {
	if p.loadErr != nil {
		return nil, &UnavailableError{Provider: p.cfg.ID, Err: p.loadErr}
	}
	hash, known := p.users.hashes[username]
	if !known {
		hash = p.dummy
	}
	if err := p.compare(hash, []byte(password)); err != nil || !known {
		return nil, ErrInvalidCredentials
	}
	return &Result{Identity: p.identity(username)}, nil
}

// identity: subject and preferred username are the username; groups from
// the files, with claims.group_prefix, then claims.static_groups. Local
// users have no email.
func (p *localProvider) identity(username string) Identity {
	var groups []string
	for _, g := range p.users.groups[username] {
		groups = append(groups, p.cfg.Claims.GroupPrefix+g)
	}
	for _, g := range p.cfg.Claims.StaticGroups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return Identity{Provider: p.cfg.ID, Subject: username, PreferredUsername: username, Groups: groups, AuthTime: p.opts.Now()}
}

// validateLocal checks a "local" provider's own settings: readable files
// with bcrypt entries only.
func (c Config) validateLocal() []error {
	_, errs := loadLocalUsers(c)
	return errs
}

// passwordProviderProblems checks what the providers whose users sign in
// with a password (typ local or ldap) have in common: none of the redirect
// providers' settings, only claims.group_prefix and claims.static_groups,
// and Basic paths.
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
	for i, path := range c.BasicAuthPaths {
		if err := checkBasicAuthPath(path); err != nil {
			errs = append(errs, fmt.Errorf("basic_auth_paths[%d]: %q %w", i, path, err))
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

// checkBasicAuthPath accepts an absolute, clean path outside the broker's
// own /oauth2/ routes: "/api/" (the subtree) or "/metrics" (that path).
func checkBasicAuthPath(p string) error {
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

// randomPassword is the dummy hash's password: nobody knows it.
func randomPassword() string { return rand.Text() }
