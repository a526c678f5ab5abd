package broker

import (
	"net/http"
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
	cur.closeIdleUpstreams()
	cur.log.Info("configuration reloaded", "providers", len(next.registry.All()), "routes", len(cfg.Routes),
		"upstreams", len(next.upstreams))
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

// closeIdleUpstreams closes the idle connections of a replaced
// generation's upstream transport; requests in flight keep theirs.
func (s *Server) closeIdleUpstreams() {
	for _, up := range s.upstreams {
		if t, ok := up.proxy.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}
