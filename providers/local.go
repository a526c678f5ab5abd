package providers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/crypto/bcrypt"
)

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
		r.Add(checkHtpasswd, SeverityOK, "local accounts: nothing to reach; the configuration check read %s", c.HtpasswdFile)
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
func (p *localProvider) Name() string { return p.cfg.DisplayName() }

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
	return req.FormLink(p.cfg.ID)
}

// Exchange always fails: a local provider has no callback.
func (p *localProvider) Exchange(context.Context, Callback) (*Result, error) {
	return nil, fmt.Errorf("providers: %s: %w", p.cfg.ID, ErrNoCallback)
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

// randomPassword is the dummy hash's password: nobody knows it.
func randomPassword() string { return rand.Text() }
