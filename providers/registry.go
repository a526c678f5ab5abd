package providers

import (
	"errors"
	"fmt"
	"reflect"
)

// Registry holds the configured providers by id, in configuration order.
// It is immutable once built and safe for concurrent use.
type Registry struct {
	byID  map[string]Provider
	order []Provider
	// types open the providers, cfgs are the configurations they were
	// opened with (Update).
	types Types
	cfgs  map[string]Config
	// warm bounds the background discoveries of this registry and of those
	// Update makes from it.
	warm chan struct{}
}

// NewRegistry opens every configuration with the type it names among
// types, and reports all problems at once, each prefixed with its position
// in the list ("providers[2].issuer: ...").
func NewRegistry(types Types, cfgs []Config, opts Options) (*Registry, error) {
	return newRegistry(types, cfgs, opts, nil)
}

// Update returns a registry for cfgs, checked as NewRegistry checks them,
// and leaves r as it is. A provider whose configuration is unchanged is
// carried over from r with what it has learnt (discovery, keys, back-off):
// a reload does not make the broker rediscover every IdP. Providers of a
// type that is reopened (Type.Reopen: local, LDAP) and those that read a
// key file are always opened anew, so that edited files take effect (an
// LDAP provider's idle connections close by themselves). The types are
// those r was built with.
func (r *Registry) Update(cfgs []Config, opts Options) (*Registry, error) {
	return newRegistry(r.types, cfgs, opts, r)
}

func newRegistry(types Types, cfgs []Config, opts Options, prev *Registry) (*Registry, error) {
	r := &Registry{byID: make(map[string]Provider, len(cfgs)), types: types, cfgs: make(map[string]Config, len(cfgs))}
	switch {
	case prev != nil && prev.warm != nil:
		r.warm = prev.warm
	default:
		r.warm = make(chan struct{}, maxWarming)
	}
	opts.warmSlots = r.warm
	var errs []error
	for i, cfg := range cfgs {
		p, err := prev.reusable(cfg), error(nil)
		if p == nil {
			p, err = types.Open(cfg, opts)
		}
		if err != nil {
			errs = append(errs, prefixErrors(fmt.Sprintf("providers[%d].", i), err))
			continue
		}
		if _, dup := r.byID[cfg.ID]; dup {
			errs = append(errs, fmt.Errorf("providers[%d].id: %q is used by an earlier provider", i, cfg.ID))
			continue
		}
		r.Add(p)
		r.cfgs[cfg.ID] = cfg
	}
	if len(cfgs) == 0 {
		errs = append(errs, errors.New("providers: at least one provider is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// reusable returns r's provider for cfg when it may be carried over
// unchanged (Update), or nil.
func (r *Registry) reusable(cfg Config) Provider {
	if r == nil || cfg.PrivateKeyFile != "" {
		return nil
	}
	if t, _ := r.types.lookup(cfg.providerType()); t.Reopen {
		return nil
	}
	if old, ok := r.cfgs[cfg.ID]; !ok || !reflect.DeepEqual(old, cfg) {
		return nil
	}
	return r.byID[cfg.ID]
}

// Add registers p. It is meant for building a registry before it is shared;
// it panics on a duplicate id, which is a programming error.
func (r *Registry) Add(p Provider) {
	if r.byID == nil {
		r.byID = make(map[string]Provider)
	}
	if _, dup := r.byID[p.ID()]; dup {
		panic("providers: duplicate provider id " + p.ID())
	}
	r.byID[p.ID()] = p
	r.order = append(r.order, p)
}

// Get returns the provider with the given id.
func (r *Registry) Get(id string) (Provider, bool) {
	p, ok := r.byID[id]
	return p, ok
}

// All returns the providers in configuration order. The slice must not be
// modified.
func (r *Registry) All() []Provider { return r.order }

// prefixErrors prefixes each joined error's message with prefix, keeping
// them separate so each can be reported with its own line.
func prefixErrors(prefix string, err error) error {
	var errs []error
	for _, e := range Flatten(err) {
		errs = append(errs, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(errs...)
}

// Flatten returns the leaves of an errors.Join tree.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}
