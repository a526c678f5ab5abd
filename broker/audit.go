package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The audit trail (docs/observability.md): one line per login, sign-out,
// back-channel logout, session renewal and refusal, at info level (warn
// when the broker or an IdP is at fault), with the same fields every time,
// and the metric that counts it. Audit lines never carry tokens, codes,
// passwords, cookies or secrets: only ids, reasons and addresses.

// event names an audit event: the event field of its line.
type event string

const (
	evLoginStarted       event = "login_started"
	evLoginSucceeded     event = "login_succeeded"
	evLoginFailed        event = "login_failed"
	evLogout             event = "logout"                     // the broker's session ended by the user
	evLogoutAtIdP        event = "logout_at_idp"              // back from the IdP's end_session_endpoint
	evLogoutRefused      event = "logout_refused"             // the sign-out form's CSRF check failed
	evBackchannel        event = "backchannel_logout"         // a logout token ended sessions
	evBackchannelRefused event = "backchannel_logout_refused" // a logout token was refused
	evAccessDenied       event = "access_denied"              // 403 by the access rules
	evBasicRefused       event = "basic_auth_refused"         // HTTP Basic credentials refused
	evSessionRefreshed   event = "session_refreshed"
	evSessionEnded       event = "session_ended" // its login could not be renewed
)

// auditMessages are the lines' messages, unless an entry says otherwise.
var auditMessages = map[event]string{
	evLoginStarted:       "login started",
	evLoginSucceeded:     "login succeeded",
	evLoginFailed:        "login refused",
	evLogout:             "signed out",
	evLogoutAtIdP:        "signed out at the identity provider",
	evLogoutRefused:      "sign-out refused",
	evBackchannel:        "back-channel logout",
	evBackchannelRefused: "back-channel logout refused",
	evAccessDenied:       "access denied",
	evBasicRefused:       "basic auth refused",
	evSessionRefreshed:   "session refreshed",
	evSessionEnded:       "session ended",
}

// auditEntry is one audit event. Its line reads, in this order: the
// message, provider, before, user, reason, error, after, then event, sub,
// client and request_id; empty fields are left out.
type auditEntry struct {
	event    event
	msg      string // default auditMessages[event]
	provider string // the provider id, as the request or the session names it
	sub      string // the subject at the provider
	user     string // default provider:sub when sub is set
	// reason says why: its text for people, its class for the metrics'
	// reason label.
	reason        auditReason
	err           error
	before, after []any // event-specific key-value pairs
	// via is where an access refusal happened: "proxy" or "forward_auth".
	via string
}

// audit writes e's line and counts it. ctx is the request's: it carries
// the client address and the request ID (entry).
func (s *Server) audit(ctx context.Context, e auditEntry) {
	code := e.reason.label()
	s.countAudit(ctx, e, code)
	level := slog.LevelInfo
	if e.reason.why.warns() {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	if anonymousEvents[e.event] && !s.withinBudget() {
		return
	}
	args := make([]any, 0, 20+len(e.before)+len(e.after))
	if e.provider != "" {
		args = append(args, "provider", truncate(e.provider, 64))
	}
	args = append(args, e.before...)
	user := e.user
	if user == "" && e.sub != "" {
		user = e.provider + ":" + e.sub
	}
	if user != "" {
		args = append(args, "user", user)
	}
	if e.reason.text != "" {
		args = append(args, "reason", e.reason.text)
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
		msg = auditMessages[e.event]
	}
	s.log.Log(ctx, level, msg, args...)
}

// anonymousEvents are the events an anonymous client can cause at will
// (starting logins, failing them, posting forms and tokens that are
// refused). Their lines share one budget of auditLinesPerSecond, so that a
// flood cannot fill the disk through the log: lines beyond it are dropped,
// and the next line logged says how many were (audit lines suppressed).
// The metrics count every event.
var anonymousEvents = map[event]bool{
	evLoginStarted: true, evLoginFailed: true, evLogoutRefused: true, evBackchannelRefused: true, evBasicRefused: true,
}

// withinBudget reports whether a line anonymous clients can cause may be
// logged now (anonymousEvents; logAnonymous).
func (s *Server) withinBudget() bool {
	ok, suppressed := s.auditBudget.take(s.now())
	if suppressed > 0 {
		s.log.Warn("audit lines suppressed", "count", suppressed, "limit_per_second", auditLinesPerSecond)
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

// auditLinesPerSecond is the budget of anonymousEvents' lines: far above
// what people signing in produce, and at most a few hundred bytes each.
const auditLinesPerSecond = 100

// lineBudget allows up to auditLinesPerSecond lines in each second.
type lineBudget struct {
	mu         sync.Mutex
	second     time.Time
	used       int
	suppressed int
}

// take reports whether a line may be logged now and, when a new second
// began after lines were dropped, how many were (once).
func (b *lineBudget) take(now time.Time) (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sec := now.Truncate(time.Second); !sec.Equal(b.second) {
		b.second, b.used = sec, 0
		suppressed, b.suppressed = b.suppressed, 0
	}
	if b.used >= auditLinesPerSecond {
		b.suppressed++
		return false, suppressed
	}
	b.used++
	return true, suppressed
}

// countAudit counts e in its metric, with code as the reason label.
func (s *Server) countAudit(ctx context.Context, e auditEntry, code string) {
	m := s.metrics
	switch e.event {
	case evLoginStarted:
		m.LoginsStarted.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case evLoginSucceeded:
		m.LoginsSucceeded.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case evLoginFailed:
		m.LoginsFailed.WithLabelValues(s.providerLabel(e.provider), code).Inc()
	case evLogout:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "local").Inc()
	case evLogoutAtIdP:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "idp").Inc()
	case evBackchannel:
		m.Logouts.WithLabelValues(s.providerLabel(e.provider), "backchannel").Inc()
	case evLogoutRefused:
		m.Refusals.WithLabelValues("logout", code).Inc()
	case evBackchannelRefused:
		m.Refusals.WithLabelValues("backchannel_logout", code).Inc()
	case evBasicRefused:
		m.Refusals.WithLabelValues("basic_auth", code).Inc()
	case evAccessDenied:
		m.AccessDenied.WithLabelValues(e.via).Inc()
	case evSessionRefreshed:
		m.SessionsRefreshed.WithLabelValues(s.providerLabel(e.provider)).Inc()
	case evSessionEnded:
		m.SessionsEnded.WithLabelValues(s.providerLabel(e.provider), code).Inc()
	}
	if info := requestInfoFrom(ctx); info != nil && (e.event == evLoginSucceeded || e.event == evLoginFailed) {
		info.login = e.event
	}
}

// why is the class of an audit reason: the value of the metrics' reason
// label, chosen where the reason is given, never read back from its text.
type why string

// The reason classes. A refusal of a client's own making is logged at
// info, trouble for the operator (whyWarns) at warn.
const (
	whyUnknownProvider  why = "unknown_provider"
	whyMissingState     why = "missing_state"
	whyUnknownState     why = "unknown_state"
	whyWrongProvider    why = "wrong_provider"
	whyStateExpired     why = "state_expired"
	whyClientRejected   why = "client_rejected"
	whyTokenError       why = "token_error"
	whyAccessDenied     why = "access_denied"
	whyNotAllowed       why = "not_allowed" // the IdP signed the user in, the provider's admission refused it (presets)
	whyIdPError         why = "idp_error"
	whyIdPUnavailable   why = "idp_unavailable"
	whyStoreUnavailable why = "store_unavailable"
	whyVerification     why = "verification_failed"
	whyBadCredentials   why = "invalid_credentials"
	whyBadRequest       why = "bad_request"
	whyPlainHTTP        why = "plain_http"
	whyCSRF             why = "csrf"
	whyReplayed         why = "replayed"
	whyRateLimited      why = "rate_limited"
	whyExpired          why = "expired"
	whyEndedElsewhere   why = "ended_elsewhere"
	whyRefreshRefused   why = "refresh_refused"
	whyRefreshFailed    why = "refresh_failed"
	// whyOther is the label of a reason given without a class (an access
	// rule's refusal, whose counter has no reason label).
	whyOther why = "other"
)

// whyWarns: trouble for the operator, not a user's mistake.
func (w why) warns() bool {
	return w == whyClientRejected || w == whyIdPUnavailable || w == whyStoreUnavailable
}

// auditReason is why something was refused: its class and its text, for
// people.
type auditReason struct {
	why  why
	text string
}

// because is the reason of class w that text tells.
func because(w why, text string) auditReason { return auditReason{why: w, text: text} }

// label is the reason's value of the metrics' reason label: its class,
// "other" when it has none, "" for no reason.
func (r auditReason) label() string {
	switch {
	case r.why != "":
		return string(r.why)
	case r.text != "":
		return string(whyOther)
	}
	return ""
}
