// Package audit is the vocabulary of the broker's audit trail
// (docs/observability.md): the events it logs (one line per login,
// sign-out, back-channel logout, session renewal and refusal), the typed
// reasons it gives, whose class is the metrics' reason label (never read
// back from the text), and the budget that bounds the lines anonymous
// clients can cause. Audit lines never carry tokens, codes, passwords,
// cookies or secrets: only ids, reasons and addresses.
package audit

import (
	"sync"
	"time"
	"unicode/utf8"
)

// Event names an audit event: the event field of its line.
type Event string

const (
	LoginStarted       Event = "login_started"
	LoginSucceeded     Event = "login_succeeded"
	LoginFailed        Event = "login_failed"
	Logout             Event = "logout"                     // the broker's session ended by the user
	LogoutAtIdP        Event = "logout_at_idp"              // back from the IdP's end_session_endpoint
	LogoutRefused      Event = "logout_refused"             // the sign-out form's CSRF check failed
	Backchannel        Event = "backchannel_logout"         // a logout token ended sessions
	BackchannelRefused Event = "backchannel_logout_refused" // a logout token was refused
	AccessDenied       Event = "access_denied"              // 403 by the access rules
	BasicRefused       Event = "basic_auth_refused"         // HTTP Basic credentials refused
	BearerRefused      Event = "bearer_token_refused"       // an API client's access token refused
	SessionRefreshed   Event = "session_refreshed"
	SessionEnded       Event = "session_ended" // its login could not be renewed
)

// messages are the lines' messages, unless an entry says otherwise.
var messages = map[Event]string{
	LoginStarted:       "login started",
	LoginSucceeded:     "login succeeded",
	LoginFailed:        "login refused",
	Logout:             "signed out",
	LogoutAtIdP:        "signed out at the identity provider",
	LogoutRefused:      "sign-out refused",
	Backchannel:        "back-channel logout",
	BackchannelRefused: "back-channel logout refused",
	AccessDenied:       "access denied",
	BasicRefused:       "basic auth refused",
	BearerRefused:      "bearer token refused",
	SessionRefreshed:   "session refreshed",
	SessionEnded:       "session ended",
}

// Message is the message of e's line, unless an entry says otherwise.
func (e Event) Message() string { return messages[e] }

// anonymous are the events an anonymous client can cause at will
// (starting logins, failing them, posting forms and tokens that are
// refused). Their lines share one budget of LinesPerSecond (Budget), so that a
// flood cannot fill the disk through the log: lines beyond it are dropped,
// and the next line logged says how many were (audit lines suppressed).
// The metrics count every event.
var anonymous = map[Event]bool{
	LoginStarted: true, LoginFailed: true, LogoutRefused: true, BackchannelRefused: true, BasicRefused: true,
	BearerRefused: true,
}

// Anonymous reports whether an anonymous client can cause e at will: its
// lines go within the Budget.
func (e Event) Anonymous() bool { return anonymous[e] }

// LinesPerSecond is the budget of the lines anonymous clients can cause
// (Event.Anonymous): far above what people signing in produce, and at
// most a few hundred bytes each.
const LinesPerSecond = 100

// Budget allows up to LinesPerSecond lines in each second. The zero
// value is ready; safe for concurrent use.
type Budget struct {
	mu         sync.Mutex
	second     time.Time
	used       int
	suppressed int
}

// Take reports whether a line may be logged now and, when a new second
// began after lines were dropped, how many were (once).
func (b *Budget) Take(now time.Time) (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sec := now.Truncate(time.Second); !sec.Equal(b.second) {
		b.second, b.used = sec, 0
		suppressed, b.suppressed = b.suppressed, 0
	}
	if b.used >= LinesPerSecond {
		b.suppressed++
		return false, suppressed
	}
	b.used++
	return true, suppressed
}

// Why is the class of an audit reason: the value of the metrics' reason
// label, chosen where the reason is given, never read back from its text.
type Why string

// The reason classes. A refusal of a client's own making is logged at
// info, trouble for the operator (Warns) at warn.
const (
	UnknownProvider  Why = "unknown_provider"
	MissingState     Why = "missing_state"
	UnknownState     Why = "unknown_state"
	WrongProvider    Why = "wrong_provider"
	StateExpired     Why = "state_expired"
	ClientRejected   Why = "client_rejected"
	TokenError       Why = "token_error"
	DeniedAtIdP      Why = "access_denied" // the IdP answered access_denied (the user cancelled, or the IdP refused)
	NotAllowed       Why = "not_allowed"   // the IdP signed the user in, the provider's admission refused it (presets)
	IdPError         Why = "idp_error"
	IdPUnavailable   Why = "idp_unavailable"
	StoreUnavailable Why = "store_unavailable"
	Verification     Why = "verification_failed"
	BadCredentials   Why = "invalid_credentials"
	BadRequest       Why = "bad_request"
	PlainHTTP        Why = "plain_http"
	CSRF             Why = "csrf"
	Replayed         Why = "replayed"
	RateLimited      Why = "rate_limited"
	Expired          Why = "expired"
	EndedElsewhere   Why = "ended_elsewhere"
	RefreshRefused   Why = "refresh_refused"
	RefreshFailed    Why = "refresh_failed"
	ProviderRemoved  Why = "provider_removed"   // a reload removed the session's provider
	InvalidToken     Why = "invalid_token"      // an API client's access token (RFC 6750)
	Scope            Why = "insufficient_scope" // the token lacks a required scope
	StepUp           Why = "step_up_unmet"      // the sign-in does not meet the route's max_age or acr_values
	// Other is the label of a reason given without a class (an access
	// rule's refusal, whose counter has no reason label).
	Other Why = "other"
)

// Warns: trouble for the operator, not a user's mistake.
func (w Why) Warns() bool {
	return w == ClientRejected || w == IdPUnavailable || w == StoreUnavailable
}

// Reason is why something was refused: its class and its text, for
// people. The zero Reason is no reason.
type Reason struct {
	why  Why
	text string
}

// Because is the reason of class w that text tells.
func Because(w Why, text string) Reason { return Reason{why: w, text: text} }

// Plain is a reason given without a class (an access rule's refusal,
// whose counter has no reason label): its label is Other.
func Plain(text string) Reason { return Reason{text: text} }

// Why is the reason's class.
func (r Reason) Why() Why { return r.why }

// Text is the reason for people, "" for none.
func (r Reason) Text() string { return r.text }

// Label is the reason's value of the metrics' reason label: its class,
// "other" when it has none, "" for no reason.
func (r Reason) Label() string {
	switch {
	case r.why != "":
		return string(r.why)
	case r.text != "":
		return string(Other)
	}
	return ""
}

// Clip keeps a value a client typed or sent (a username, a claim of a
// refused token) at most n bytes long in a log line, cut at a character
// boundary and marked with "…".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
