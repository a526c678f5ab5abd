package broker

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/requestlog"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// Request IDs and the request log (docs/observability.md). Every request
// gets an ID: the one a trusted proxy sent in log.request_id_header, or a
// new random one. It is in every log line written with the request's
// context (package requestlog), in the response, and in the request the upstream
// app receives, so that the logs of the proxy, the broker and the app can
// be joined. Forward-auth's 2xx answers are the exception: a proxy passes
// on none of their headers but those it is told to copy, so the ID would
// reach nobody (a proxy that wants the broker's logs to carry its ID sends
// it, from a peer in trusted_proxies.from).

// DefaultRequestIDHeader is the header that carries the request ID when
// log.request_id_header is not set.
const DefaultRequestIDHeader = requestlog.DefaultHeader

// requestInfo is what the broker knows of a request from its start, in the
// request's context (entry). It is also the request's responseWriter and
// its context: one allocation for the three.
type requestInfo struct {
	ctx    requestContext // the context entry gives the request
	facts  proxyfix.Facts // as proxyfix established them: the client address
	start  time.Time      // when entry began; set only while the request log (debug) is on
	login  audit.Event    // the login event audit wrote for this request, if any (timeCallback)
	writer responseWriter

	// rid is the request ID: rid.Sent when a trusted proxy sent one
	// (sentRequestID), else made on first use. Forward-auth's answers, which
	// only proxies read, mostly need none.
	rid requestlog.ID

	// prefixKept: the path still carries the external prefix (public_url's
	// path), as for an embedding program's handlers (needSignIn).
	prefixKept bool
	// readOnly: entry read the session without an scs context
	// (sessions.peek: forward-auth), and peeked is its identity, nil when
	// the request is not signed in. There is no scs session to read.
	readOnly bool
	peeked   *session.View
}

// ID is the request's ID.
func (info *requestInfo) ID() string { return info.rid.String() }

// idValue is ID as a header value, shared by the request's ID headers: it
// is never appended to (capacity 1).
func (info *requestInfo) idValue() []string { return info.rid.Value() }

// client is the client address, as proxyfix established it (clientAddr).
func (info *requestInfo) client() string {
	if info.facts.ClientIP.IsValid() {
		return info.facts.ClientIP.String()
	}
	return info.facts.ClientNode
}

type requestInfoKey struct{}

// requestContext is the context entry gives a request: the connection's,
// with the requestInfo, its ID and proxyfix's facts as values, answered by
// one Value method instead of three context.WithValue (three allocations
// and a longer chain for every lookup).
type requestContext struct {
	context.Context
	info *requestInfo
}

func (c *requestContext) Value(key any) any {
	switch key {
	case requestInfoKey{}:
		return c.info
	case proxyfix.ContextKey{}:
		return &c.info.facts
	case requestlog.ContextKey{}:
		return &c.info.rid
	}
	return c.Context.Value(key)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// RequestIDFrom returns the ID of the request whose context ctx is, as the
// broker's logs show it; "" outside the broker's handlers. An embedding
// program's handlers behind Require or Protect can log it too.
func RequestIDFrom(ctx context.Context) string { return requestlog.From(ctx) }

// sentRequestID is the ID a trusted proxy sent in log.request_id_header,
// when the direct peer (facts') is in trusted_proxies.from and the value is
// one plain token; "" otherwise, and the request gets a new one. A client
// cannot choose the ID, nor put anything into the log through it.
func (s *Server) sentRequestID(r *http.Request, facts *proxyfix.Facts) string {
	if name := s.cfg.Log.RequestIDHeader; name != "" && s.fix.Listed(facts.Original.Peer) {
		if v := r.Header.Values(name); len(v) == 1 && requestlog.Valid(v[0]) {
			return v[0]
		}
	}
	return ""
}

// requestIDHeaderProblems checks log.request_id_header
// (requestlog.HeaderProblems).
func (c Config) requestIDHeaderProblems() []error {
	return requestlog.HeaderProblems(c.Log.RequestIDHeader, c.Assertion.Header)
}

// requestIDHeaderWarnings: a request ID header that is never believed.
func (c Config) requestIDHeaderWarnings() []string {
	if c.Log.RequestIDHeader != "" && len(c.TrustedProxies.From) == 0 {
		return []string{"log.request_id_header: request IDs are taken only from peers in trusted_proxies.from, which is empty: every request gets a new ID"}
	}
	return nil
}

// withRequestIDs puts request_id in the lines logged for a request
// (requestlog.WithIDs).
func withRequestIDs(l *slog.Logger) *slog.Logger { return requestlog.WithIDs(l) }
