package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
)

// The audit trail (docs/observability.md; its events and reasons are
// package audit): one line per login, sign-out, back-channel logout,
// session renewal and refusal, at info level (warn when the broker or an
// IdP is at fault), with the same fields every time, and the metric that
// counts it. Audit lines never carry tokens, codes, passwords, cookies or
// secrets: only ids, reasons and addresses.

// auditEntry is one audit event. Its line reads, in this order: the
// message, provider, before, user, reason, error, after, then event, sub,
// client and request_id; empty fields are left out.
type auditEntry struct {
	event    audit.Event
	msg      string // default event.Message()
	provider string // the provider id, as the request or the session names it
	sub      string // the subject at the provider
	user     string // default provider:sub when sub is set
	// reason says why: its text for people, its class for the metrics'
	// reason label.
	reason        audit.Reason
	err           error
	before, after []any // event-specific key-value pairs
	// via is where an access refusal happened: "proxy" or "forward_auth".
	via string
}

// audit writes e's line and counts it. ctx is the request's: it carries
// the client address and the request ID (entry).
func (s *Server) audit(ctx context.Context, e auditEntry) {
	code := e.reason.Label()
	s.countAudit(ctx, e, code)
	level := slog.LevelInfo
	if e.reason.Why().Warns() {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	if e.event.Anonymous() && !s.withinBudget() {
		return
	}
	args := make([]any, 0, 20+len(e.before)+len(e.after))
	if e.provider != "" {
		args = append(args, "provider", audit.Clip(e.provider, 64))
	}
	args = append(args, e.before...)
	user := e.user
	if user == "" && e.sub != "" {
		user = e.provider + ":" + e.sub
	}
	if user != "" {
		args = append(args, "user", user)
	}
	if text := e.reason.Text(); text != "" {
		args = append(args, "reason", text)
	}
	if e.err != nil {
		args = append(args, "error", e.err)
	}
	args = append(args, e.after...)
	if e.via != "" {
		args = append(args, "via", e.via)
	}
	args = append(args, "event", string(e.event))
	if e.sub != "" {
		args = append(args, "sub", e.sub)
	}
	if info := requestInfoFrom(ctx); info != nil {
		args = append(args, "client", info.client())
	}
	msg := e.msg
	if msg == "" {
		msg = e.event.Message()
	}
	// The record goes to the handler without a caller's PC (Logger.Log
	// walks the stack for it, about 2 µs a line, two lines a login): with
	// a handler that adds the source, it would name this line for every
	// audit event.
	rec := slog.NewRecord(time.Now(), level, msg, 0)
	rec.Add(args...)
	_ = s.log.Handler().Handle(ctx, rec)
}

// withinBudget reports whether a line anonymous clients can cause may be
// logged now (audit.Event.Anonymous; logAnonymous).
func (s *Server) withinBudget() bool {
	ok, suppressed := s.auditBudget.Take(s.now())
	if suppressed > 0 {
		s.log.Warn("audit lines suppressed", "count", suppressed, "limit_per_second", audit.LinesPerSecond)
	}
	return ok
}

// logAnonymous logs a line that is not an audit event but that anonymous
// clients can cause at will (a form that does not read, an upstream that
// does not answer, a limited password attempt), within the same budget.
func (s *Server) logAnonymous(ctx context.Context, level slog.Level, msg string, args ...any) {
	if s.log.Enabled(ctx, level) && s.withinBudget() {
		s.log.Log(ctx, level, msg, args...)
	}
}

// countAudit counts e in its metric, with code as the reason label.
func (s *Server) countAudit(ctx context.Context, e auditEntry, code string) {
	m := s.metrics
	switch e.event {
	case audit.LoginStarted:
		m.LoginsStarted.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case audit.LoginSucceeded:
		m.LoginsSucceeded.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case audit.LoginFailed:
		m.LoginsFailed.WithLabelValues(s.providerLabel(e.provider), code).Inc()
	case audit.Logout:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "local").Inc()
	case audit.LogoutAtIdP:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "idp").Inc()
	case audit.Backchannel:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "backchannel").Inc()
	case audit.LogoutRefused:
		m.Refusals.WithLabelValues("logout", code).Inc()
	case audit.BackchannelRefused:
		m.Refusals.WithLabelValues("backchannel_logout", code).Inc()
	case audit.BasicRefused:
		m.Refusals.WithLabelValues("basic_auth", code).Inc()
	case audit.BearerRefused:
		m.Refusals.WithLabelValues("bearer_token", code).Inc()
	case audit.AccessDenied:
		m.AccessDenied.WithLabelValues(e.via).Inc()
	case audit.SessionRefreshed:
		m.SessionsRefreshed.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case audit.SessionEnded:
		m.SessionsEnded.WithLabelValues(s.providerLabel(e.provider), code).Inc()
	}
	if info := requestInfoFrom(ctx); info != nil && (e.event == audit.LoginSucceeded || e.event == audit.LoginFailed) {
		info.login = e.event
	}
}
