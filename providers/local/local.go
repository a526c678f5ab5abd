// Package local is the provider type "local" (Type): static users from an
// Apache htpasswd file of bcrypt hashes, with groups from an Apache group
// file or the configuration, who sign in on the broker's own form through
// the providers.PasswordAuthenticator capability (docs/local-users.md).
// The files are read when a provider is opened; a reload opens it anew.
package local

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/providers"
)

// provider authenticates static users from a bcrypt htpasswd file, with
// groups from an Apache group file or the configuration. The files are read
// when it is opened; changes need a restart.
type provider struct {
	cfg     providers.Config
	opts    providers.Options
	users   *localUsers
	loadErr error  // the files changed and broke between Check and Open
	dummy   []byte // a bcrypt hash of a random password, at the users' usual cost
	// compare is bcrypt.CompareHashAndPassword; a seam for tests.
	compare func(hash, password []byte) error
}

var (
	_ providers.Provider              = (*provider)(nil)
	_ providers.PasswordAuthenticator = (*provider)(nil)
)

// Type is the provider type "local". A reload opens its providers anew, so
// that edited files take effect.
var Type = providers.Type{Name: providers.TypeLocal, Check: check, Open: open, Probe: probe, Reopen: true}

// probe reports that there is nothing to reach; the configuration check
// read the files.
func probe(_ context.Context, c providers.Config, _ *http.Client, r *providers.Report) {
	r.Add("htpasswd_file", providers.SeverityOK, "local accounts: nothing to reach; the configuration check read %s", c.HtpasswdFile)
}

func open(cfg providers.Config, opts providers.Options) providers.Provider {
	p := &provider{cfg: cfg, opts: opts, compare: bcrypt.CompareHashAndPassword}
	users, errs := loadLocalUsers(cfg)
	if len(errs) > 0 {
		// Check read the same files a moment ago: they changed since.
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

func (p *provider) ID() string   { return p.cfg.ID }
func (p *provider) Name() string { return p.cfg.DisplayName() }

// Status: available unless the files failed to load.
func (p *provider) Status() providers.Status {
	if p.loadErr != nil {
		return providers.Status{Reason: "user list unreadable"}
	}
	return providers.Status{Available: true}
}

// AuthCodeURL returns the broker's login form for this provider
// (req.FormURL) with the state, and the login hint as the username to
// fill in.
func (p *provider) AuthCodeURL(_ context.Context, req providers.AuthRequest) (string, error) {
	if p.loadErr != nil {
		return "", &providers.UnavailableError{Provider: p.cfg.ID, Err: p.loadErr}
	}
	return req.FormLink(p.cfg.ID)
}

// Exchange always fails: a local provider has no callback.
func (p *provider) Exchange(context.Context, providers.Callback) (*providers.Result, error) {
	return nil, fmt.Errorf("providers: %s: %w", p.cfg.ID, providers.ErrNoCallback)
}

// Authenticate implements PasswordAuthenticator. Exactly one bcrypt
// comparison runs per call: for an unknown user against a dummy hash of the
// usual cost, so the response time does not tell which usernames exist.
func (p *provider) Authenticate(_ context.Context, username, password string) (*providers.Result, error) {
	if p.loadErr != nil {
		return nil, &providers.UnavailableError{Provider: p.cfg.ID, Err: p.loadErr}
	}
	hash, known := p.users.hashes[username]
	if !known {
		hash = p.dummy
	}
	if err := p.compare(hash, []byte(password)); err != nil || !known {
		return nil, providers.ErrInvalidCredentials
	}
	return &providers.Result{Identity: p.identity(username)}, nil
}

// identity: subject and preferred username are the username; groups from
// the files, with claims.group_prefix, then claims.static_groups. Local
// users have no email.
func (p *provider) identity(username string) providers.Identity {
	var groups []string
	for _, g := range p.users.groups[username] {
		groups = append(groups, p.cfg.Claims.GroupPrefix+g)
	}
	for _, g := range p.cfg.Claims.StaticGroups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return providers.Identity{Provider: p.cfg.ID, Subject: username, PreferredUsername: username, Groups: groups, AuthTime: p.opts.Now(),
		AuthnTime: p.opts.Now()} // the password, checked now
}

// check checks a "local" provider's own settings: readable files
// with bcrypt entries only.
func check(c providers.Config) []error {
	_, errs := loadLocalUsers(c)
	return errs
}

// randomPassword is the dummy hash's password: nobody knows it.
func randomPassword() string { return rand.Text() }

func (p *provider) Reachability() providers.Reachability {
	if p.loadErr != nil {
		return providers.ReachFailed
	}
	return providers.ReachOK
}

func (p *provider) Reach(context.Context) error {
	if p.loadErr != nil {
		return fmt.Errorf("providers: %s: htpasswd_file: %w", p.cfg.ID, p.loadErr)
	}
	return nil
}
