// Package readiness is /readyz's look at the identity providers: with
// readiness.require_idp, the broker is ready only while at least one
// identity provider is reachable (a local provider always is; otherwise
// one IdP answered within the check interval). A look runs in the
// background, at most once per interval, and never holds /readyz longer
// than its caller's context.
package readiness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// Config says what /readyz requires besides the session store
// (readiness in the configuration).
type Config struct {
	// RequireIdP makes /readyz answer 503 unless at least one identity
	// provider is reachable: a local provider always is; otherwise one IdP
	// must have answered within the last IdPCheckInterval. Default false.
	RequireIdP bool `yaml:"require_idp"`
	// IdPCheckInterval is how long /readyz reuses its last look at the
	// IdPs; it asks them at most this often. Default 30s; at least 1s.
	IdPCheckInterval time.Duration `yaml:"idp_check_interval"`
}

// DefaultIdPCheckInterval is Config.IdPCheckInterval's default.
const DefaultIdPCheckInterval = 30 * time.Second

// Problems checks the settings; each message starts with its field's
// path.
func (c Config) Problems() []error {
	var errs []error
	switch {
	case c.IdPCheckInterval < 0 || (c.IdPCheckInterval > 0 && c.IdPCheckInterval < time.Second):
		errs = append(errs, fmt.Errorf("readiness.idp_check_interval: %s must be at least 1s", c.IdPCheckInterval))
	case c.IdPCheckInterval > 0 && !c.RequireIdP:
		errs = append(errs, errors.New("readiness.idp_check_interval: is only used with readiness.require_idp: true"))
	}
	return errs
}

// Limits of one look at the IdPs.
const (
	reachTimeout = 2 * time.Second // one request to one IdP
	lookTimeout  = 5 * time.Second // the whole look
	maxReaching  = 4               // requests at once
)

// /readyz's answers when no IdP is known to be reachable.
var (
	ErrNoIdP   = errors.New("no identity provider reachable")
	ErrPending = errors.New("identity providers not checked yet")
)

// IdPs tells /readyz whether an identity provider is reachable. It
// belongs to one provider registry: build a new one with a new registry.
// Safe for concurrent use; a nil *IdPs requires nothing.
type IdPs struct {
	registry *providers.Registry
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	// reachTimeout bounds one request to one IdP (a seam for tests).
	reachTimeout time.Duration

	mu      sync.Mutex
	started time.Time     // of the last look
	done    bool          // a look has finished
	err     error         // its answer: nil, or ErrNoIdP
	running chan struct{} // closed when the running look ends; nil when none runs
}

// New returns the look at registry's providers, nil unless cfg.RequireIdP.
func New(cfg Config, registry *providers.Registry, now func() time.Time, log *slog.Logger) *IdPs {
	if !cfg.RequireIdP {
		return nil
	}
	interval := cfg.IdPCheckInterval
	if interval == 0 {
		interval = DefaultIdPCheckInterval
	}
	return &IdPs{registry: registry, interval: interval, now: now, log: log, reachTimeout: reachTimeout}
}

// CarryOver keeps prev's last answer (of the generation a reload replaced)
// until r's first look ends: a reload starts a new look at the new
// providers, and must not take the broker out of rotation meanwhile.
func (r *IdPs) CarryOver(prev *IdPs) {
	if r == nil || prev == nil {
		return
	}
	prev.mu.Lock()
	done, err := prev.done, prev.err
	prev.mu.Unlock()
	r.mu.Lock()
	r.done, r.err = done, err // started stays zero: the next check looks again
	r.mu.Unlock()
}

// Check answers nil when an identity provider is reachable. It reuses the
// last look for the interval; otherwise it starts one (detached from ctx,
// so a client hanging up does not cut it short) and waits for it until ctx
// ends, then falls back on the previous look.
func (r *IdPs) Check(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if r.done && r.now().Sub(r.started) < r.interval {
		defer r.mu.Unlock()
		return r.err
	}
	if r.running == nil {
		r.running, r.started = make(chan struct{}), r.now()
		go r.look(r.running)
	}
	running := r.running
	r.mu.Unlock()

	select {
	case <-running:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		return ErrPending
	}
	return r.err
}

func (r *IdPs) look(running chan struct{}) {
	id, err := r.reachable()
	r.mu.Lock()
	changed := !r.done || (err == nil) != (r.err == nil)
	r.done, r.running = true, nil
	r.err = nil
	if err != nil {
		r.err = ErrNoIdP
	}
	r.mu.Unlock()
	close(running)
	switch {
	case !changed:
	case err == nil:
		r.log.Info("readiness: an identity provider is reachable", "provider", id)
	default:
		r.log.Warn("readiness: no identity provider is reachable", "error", err)
	}
}

// reachable returns the id of a provider that is reachable now. A local
// provider is, without a request. Otherwise the IdPs are asked (providers.Reach),
// those discovered before first, a few at a time, until one answers; those
// whose discovery failed moments ago are left to their own back-off.
func (r *IdPs) reachable() (string, error) {
	var discovered, unknown []providers.Provider
	for _, p := range r.registry.All() {
		switch providers.KnownReachability(p) {
		case providers.ReachOK:
			if _, local := p.(providers.PasswordAuthenticator); local {
				return p.ID(), nil
			}
			discovered = append(discovered, p)
		case providers.ReachUnknown:
			unknown = append(unknown, p)
		}
	}
	candidates := slices.Concat(discovered, unknown)
	if len(candidates) == 0 {
		return "", errors.New("every provider failed its last discovery and waits before trying again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookTimeout)
	defer cancel()
	var (
		mu    sync.Mutex
		found string
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxReaching)
	)
	for _, p := range candidates {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			rctx, rcancel := context.WithTimeout(ctx, r.reachTimeout)
			defer rcancel()
			err := providers.Reach(rctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && found == "" {
				found = p.ID()
				cancel() // the others need not answer
			} else if err != nil && found == "" {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if found != "" {
		return found, nil
	}
	if len(errs) < len(candidates) {
		errs = append(errs, fmt.Errorf("%d provider(s) not asked within %s", len(candidates)-len(errs), lookTimeout))
	}
	return "", errors.Join(errs...)
}
