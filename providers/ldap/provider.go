// Package ldap is the provider type "ldap" (Type): the users of an LDAP
// directory, OpenLDAP or Active Directory, sign in on the broker's own
// form, through the providers.PasswordAuthenticator capability. It checks
// the `ldap:` settings (providers.LDAPConfig, with the directory presets
// applied), keeps a bounded pool of connections, finds and binds the user,
// reads the identity and the groups, and reports for `oidc-broker check
// --online` what the directory says (docs/ldap.md). Inside this package,
// the name ldap is go-ldap's.
package ldap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/providers"
)

// provider signs in the users of an LDAP directory (OpenLDAP, Active
// Directory, ...) on the broker's own login form: a PasswordAuthenticator
// like the local provider, so that the form's CSRF protection, rate limits
// and HTTP Basic apply unchanged. A sign-in binds as the service account,
// finds exactly one entry for the username (escaped into the filter), binds
// as that entry with the password, and reads the identity and groups
// (docs/ldap.md).
//
// A directory that does not answer makes the provider unavailable on the
// sign-in page until a retry (after a back-off of 1 s doubling to 30 s)
// reaches it again; the other providers are not affected.
type provider struct {
	cfg     providers.Config
	opts    providers.Options
	set     settings
	pool    *pool
	loadErr error // a file changed and broke between Check and Open

	mu       sync.Mutex
	lastErr  error     // why the directory was last unusable; nil when it answered
	failures int       // in a row
	retryAt  time.Time // no attempt before, while lastErr is set
	lastOK   time.Time // when the directory last answered
	checking bool      // a background check runs
}

var (
	_ providers.Provider              = (*provider)(nil)
	_ providers.PasswordAuthenticator = (*provider)(nil)
)

// Back-off after a failed contact, and how often the sign-in page has the
// directory checked while it is believed up.
const (
	ldapMinBackoff     = time.Second
	ldapMaxBackoff     = 30 * time.Second
	ldapHealthInterval = 30 * time.Second
)

// Type is the provider type "ldap". A reload opens its providers anew, so
// that edited files (the CA, the bind password) take effect.
var Type = providers.Type{Name: providers.TypeLDAP, Check: check, Open: open, Probe: probe, Reopen: true}

func open(cfg providers.Config, opts providers.Options) providers.Provider {
	p := &provider{cfg: cfg, opts: opts}
	s, errs := load(*cfg.LDAP)
	if len(errs) > 0 {
		// Check read the same files a moment ago: they changed since.
		p.loadErr = errors.Join(errs...)
		opts.Logger.Error("ldap provider: cannot load its configuration", "provider", cfg.ID, "error", p.loadErr)
		return p
	}
	p.set, p.pool = s, newPool(s)
	if s.InsecureNoTLS {
		opts.Logger.Warn("ldap provider: insecure_no_tls is set: passwords may cross the network in clear text", "provider", cfg.ID)
	}
	return p
}

// check checks an "ldap" provider's own settings: a complete ldap
// block.
func check(c providers.Config) []error {
	if c.LDAP == nil {
		return []error{errors.New("ldap: is required for a provider of type ldap (urls, bind_dn, bind_password, user_search.base_dn)")}
	}
	_, errs := load(*c.LDAP)
	return errs
}

func (p *provider) ID() string   { return p.cfg.ID }
func (p *provider) Name() string { return p.cfg.DisplayName() }

// Status never blocks. While the directory is believed down it reports so,
// and once the back-off has passed it has the directory checked in the
// background; while it is believed up, it has it checked when nothing was
// heard from it for ldapHealthInterval, so that the page learns of a
// directory that went down without anyone trying to sign in.
func (p *provider) Status() providers.Status {
	if p.loadErr != nil {
		return providers.Status{Reason: "configuration unreadable"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	switch {
	case p.lastErr != nil && now.Before(p.retryAt):
		return providers.Status{Reason: "directory unreachable, retrying shortly"}
	case p.lastErr != nil:
		p.checkLocked()
		return providers.Status{Reason: "directory unreachable, retrying now"}
	case now.Sub(p.lastOK) > ldapHealthInterval:
		p.checkLocked()
	}
	return providers.Status{Available: true}
}

// checkLocked starts a background check of the directory unless one runs
// or the registry's background slots are all taken. p.mu must be held.
func (p *provider) checkLocked() {
	if p.checking {
		return
	}
	p.checking = p.opts.Background(func() {
		// Detached from any request: a client hanging up must not count
		// as the directory failing.
		ctx, cancel := context.WithTimeout(context.Background(), p.set.DialTimeout+2*p.set.Timeout)
		defer cancel()
		p.record(p.ping(ctx))
		p.mu.Lock()
		p.checking = false
		p.mu.Unlock()
	})
}

// ping binds as the service account (unless the connection is bound so
// already) and reads the user search's base entry: the directory answers
// and the configuration can find users.
func (p *provider) ping(ctx context.Context) error {
	return p.pool.run(ctx, func(c *conn) error {
		_, err := c.search(ldap.NewSearchRequest(p.set.UserSearch.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, p.timeLimit(), false, "(objectClass=*)", []string{"1.1"}, nil))
		return err
	})
}

// record notes the outcome of a contact with the directory: nil when it
// answered as it should, else why not.
func (p *provider) record(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	if err == nil {
		if p.lastErr != nil {
			p.opts.Logger.Info("ldap provider: the directory answers again", "provider", p.cfg.ID)
		}
		p.lastErr, p.failures, p.lastOK = nil, 0, now
		return
	}
	if p.lastErr == nil {
		p.opts.Logger.Warn("ldap provider: the directory is unusable; its sign-in is unavailable until it answers",
			"provider", p.cfg.ID, "error", describeLDAPError(err))
	}
	p.failures++
	p.retryAt = now.Add(min(ldapMinBackoff<<min(p.failures-1, 16), ldapMaxBackoff))
	p.lastErr = described{err}
}

// unavailable is the error of a sign-in while the directory is believed
// down and the back-off has not passed, or nil.
func (p *provider) unavailable() error {
	if p.loadErr != nil {
		return &providers.UnavailableError{Provider: p.cfg.ID, Err: p.loadErr}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr != nil && p.opts.Now().Before(p.retryAt) {
		return &providers.UnavailableError{Provider: p.cfg.ID, RetryAfter: p.retryAt, Err: p.lastErr}
	}
	return nil
}

// AuthCodeURL returns the broker's login form for this provider, as for a
// local provider; while the directory is down it fails with an
// *UnavailableError instead, so nobody types a password in vain. When the
// directory failed last and its back-off has passed, it is checked first.
func (p *provider) AuthCodeURL(ctx context.Context, req providers.AuthRequest) (string, error) {
	if err := p.unavailable(); err != nil {
		return "", err
	}
	p.mu.Lock()
	down := p.lastErr != nil
	p.mu.Unlock()
	if down {
		err := p.ping(ctx)
		if ctx.Err() == nil {
			p.record(err)
		}
		if err != nil {
			return "", &providers.UnavailableError{Provider: p.cfg.ID, Err: described{err}}
		}
	}
	return req.FormLink(p.cfg.ID)
}

// Exchange always fails: an LDAP provider has no callback.
func (p *provider) Exchange(context.Context, providers.Callback) (*providers.Result, error) {
	return nil, fmt.Errorf("providers: %s: %w", p.cfg.ID, providers.ErrNoCallback)
}

// Authenticate implements PasswordAuthenticator. An empty password, and a
// username no entry could have (empty, control characters, invalid UTF-8,
// longer than 256 bytes), are refused before the directory is asked: a
// bind with an empty password is an "unauthenticated bind", which many
// servers answer with success (RFC 4513 §5.1.2). The directory's trouble
// is an *UnavailableError, which makes the provider unavailable on the
// sign-in page until it answers again.
func (p *provider) Authenticate(ctx context.Context, username, password string) (*providers.Result, error) {
	if password == "" || !plausibleUsername(username) {
		return nil, providers.ErrInvalidCredentials
	}
	if err := p.unavailable(); err != nil {
		return nil, err
	}
	var id providers.Identity
	err := p.pool.run(ctx, func(c *conn) error {
		var err error
		id, err = p.signIn(c, username, password)
		return err
	})
	var entryErr *ldapEntryError
	switch {
	case err == nil:
		p.record(nil)
		return &providers.Result{Identity: id}, nil
	case errors.Is(err, providers.ErrInvalidCredentials):
		p.record(nil) // the directory answered
		return nil, err
	case ctx.Err() != nil, errors.Is(err, errPoolBusy):
		// The client left, or the other sign-ins hold every connection:
		// not the directory's fault.
		return nil, &providers.UnavailableError{Provider: p.cfg.ID, Err: described{err}}
	case errors.As(err, &entryErr):
		// One entry's fault, not the directory's.
		p.opts.Logger.Error("ldap provider: sign-in failed", "provider", p.cfg.ID, "error", describeLDAPError(err))
		return nil, &providers.UnavailableError{Provider: p.cfg.ID, Err: described{err}}
	}
	p.record(err)
	return nil, &providers.UnavailableError{Provider: p.cfg.ID, Err: described{err}}
}

// described is an error that prints as describeLDAPError: whoever logs it
// gets no diagnostic text of the directory's.
type described struct{ err error }

func (d described) Error() string { return describeLDAPError(d.err) }
func (d described) Unwrap() error { return d.err }

func (p *provider) timeLimit() int {
	return max(1, int((p.set.Timeout+time.Second-1)/time.Second))
}

// reachability and reach make an LDAP provider known to the readiness
// check (probe.go): reachable while it answered within ldapHealthInterval.
func (p *provider) Reachability() providers.Reachability {
	if p.loadErr != nil {
		return providers.ReachFailed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch now := p.opts.Now(); {
	case p.lastErr != nil && now.Before(p.retryAt):
		return providers.ReachFailed
	case p.lastErr == nil && !p.lastOK.IsZero() && now.Sub(p.lastOK) <= ldapHealthInterval:
		return providers.ReachOK
	}
	return providers.ReachUnknown
}

func (p *provider) Reach(ctx context.Context) error {
	if p.loadErr != nil {
		return fmt.Errorf("providers: %s: %w", p.cfg.ID, p.loadErr)
	}
	if err := p.ping(ctx); err != nil {
		return fmt.Errorf("providers: %s: directory: %s", p.cfg.ID, describeLDAPError(err))
	}
	return nil
}

// adReason finds Active Directory's reason in a bind error's diagnostic
// message ("... AcceptSecurityContext error, data 775, v4563").
var adReason = regexp.MustCompile(`\bdata ([0-9a-fA-F]{3,8})\b`)

// adReasons are the reasons Active Directory gives for a refused bind.
var adReasons = map[string]string{
	"525": "no such user", "52e": "wrong password", "530": "not permitted at this time",
	"531": "not permitted at this workstation", "532": "password expired", "533": "account disabled",
	"701": "account expired", "773": "password must be changed", "775": "account locked out",
}

// describeLDAPError says what went wrong without quoting the directory's
// diagnostic text: the result code and its name, and Active Directory's
// reason code when it gave one; network errors as they are.
func describeLDAPError(err error) string {
	var step *ldapStepError
	if errors.As(err, &step) {
		return step.step + ": " + describeLDAPError(step.err)
	}
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork {
		return err.Error()
	}
	msg := fmt.Sprintf("LDAP result %d (%s)", le.ResultCode, ldap.LDAPResultCodeMap[le.ResultCode])
	if le.Err != nil {
		if m := adReason.FindStringSubmatch(le.Err.Error()); m != nil {
			if why, ok := adReasons[m[1]]; ok {
				msg += ": Active Directory says " + why
			}
		}
	}
	var se *serviceBindError
	if errors.As(err, &se) {
		msg = "the service account's bind failed: " + msg
	}
	return msg
}
