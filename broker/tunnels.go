package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/oidc-broker/oidc-broker/broker/metrics"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/broker/upstream"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Tunnels (package upstream): a WebSocket that the reverse proxy opened for
// a signed-in session is closed when that session ends. The broker
// registers each one under its session token, and closes them when a
// session ends here (the session package tells it: endTunnels).

// initTunnels sets up the registry of the process: checked against the
// session store within the session cache's time to live, and told of the
// Redis store's invalidations.
func (s *Server) initTunnels() {
	interval := s.cfg.Session.cacheTTL()
	if interval <= 0 {
		interval = DefaultCacheTTL
	}
	s.tunnels = upstream.NewTunnels(upstream.TunnelsConfig{Interval: interval,
		Alive: func(ctx context.Context, token string) (bool, error) {
			_, found, err := s.sessions.Backing().FindCtx(ctx, token) // never the token cache: a plain context
			return found, err
		},
		Ended:  s.tunnelsEnded,
		Failed: func(err error) { s.logStoreError(context.Background(), "tunnels: session store unavailable", err) },
	})
	if rs, ok := metrics.Unobserved(s.store).(*store.Redis); ok {
		s.tunnels.Subscribe(rs.Invalidations(s.tunnels.Invalidated))
	}
}

// trackTunnel registers r, when it asks to switch protocols for a session
// that is signed in, as a tunnel of that session: the request returned
// carries the context that ending the session cancels, and done must be
// called when the tunnel closes. Other requests pass unchanged (an upgrade
// to anything but a WebSocket reaches no app as one: package upstream). ok is false
// when the session has too many tunnels already; trackTunnel answered then.
func (s *Server) trackTunnel(w http.ResponseWriter, r *http.Request) (_ *http.Request, done func(), ok bool) {
	if !upstream.IsWebSocketUpgrade(r.Header) {
		return r, func() {}, true
	}
	ctx := r.Context()
	_, signedIn := IdentityFrom(ctx)
	_, basic := ctx.Value(basicIdentityKey{}).(providers.Identity)
	if !signedIn || basic { // anonymous, or HTTP Basic: no session to end
		return r, func() {}, true
	}
	token := s.sessions.Token(ctx) // signed in by the session: it is loaded
	if token == "" {
		return r, func() {}, true
	}
	tctx, done, err := s.tunnels.Open(ctx, token)
	if err != nil {
		s.log.WarnContext(ctx, "tunnel refused", "error", err, "limit", upstream.MaxTunnelsPerSession)
		if errors.Is(err, upstream.ErrTunnelsClosed) {
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		} else {
			writeJSONError(w, http.StatusTooManyRequests, "too_many_connections")
		}
		return nil, nil, false
	}
	return r.WithContext(tctx), done, true
}

// endTunnels closes the tunnels of the session token, which ended on this
// replica (session.Ending.Ended).
func (s *Server) endTunnels(token string) {
	if n := s.tunnels.End(token); n > 0 {
		s.tunnelsEnded(n, "ended here")
	}
}

// tunnelsEnded logs n tunnels closed because their session ended (how).
func (s *Server) tunnelsEnded(n int, how string) {
	s.log.Info("tunnels closed: their session ended", "tunnels", n, "how", how)
}
