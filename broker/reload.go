package broker

import (
	"reflect"
)

// Reload replaces the running configuration with cfg, checked as New
// checks it. When cfg is invalid nothing changes and the error lists every
// problem. Otherwise the providers, the sign-in page, trusted proxies,
// allowed and redirect hosts, upstreams and access rules change at once
// for new requests; requests in flight finish with the configuration they
// started with. Sessions survive: the session store is not touched, and
// providers whose settings did not change keep their discovery and keys.
// The sessions of a provider cfg no longer has end at their next request
// (sessionIdentity).
//
// Some settings are bound to resources opened at start: listen, server,
// session, log, assertion and metrics. A change to them is not applied (a warning names
// each) until the process restarts.
func (s *Server) Reload(cfg Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.live.Load()
	if err := cfg.validate(cur.opts.Registry == nil); err != nil {
		return err
	}
	for _, field := range keepRestartOnly(&cfg, cur.cfg) {
		cur.log.Warn("configuration reload: " + field + " changed; the change takes effect at the next restart")
	}
	next := *cur // the process-lifetime parts: store, sessions, keys, logger, limiters
	next.cfg = cfg
	if err := next.configure(cur); err != nil {
		return err
	}
	s.live.Store(&next)
	cur.upstreams.CloseIdle()
	cur.log.Info("configuration reloaded", "providers", len(next.registry.All()), "routes", len(cfg.Routes),
		"upstreams", next.upstreams.Len())
	return nil
}

// keepRestartOnly sets next's restart-only settings to the running ones and
// names those that differed.
func keepRestartOnly(next *Config, running Config) []string {
	var changed []string
	keep(&changed, "listen", &next.Listen, running.Listen)
	keep(&changed, "server", &next.Server, running.Server)
	keep(&changed, "session", &next.Session, running.Session)
	keep(&changed, "log", &next.Log, running.Log)
	keep(&changed, "assertion", &next.Assertion, running.Assertion)
	keep(&changed, "metrics", &next.Metrics, running.Metrics)
	return changed
}

func keep[T any](changed *[]string, name string, next *T, running T) {
	if !reflect.DeepEqual(*next, running) {
		*changed = append(*changed, name)
		*next = running
	}
}
