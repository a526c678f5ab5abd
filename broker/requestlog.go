package broker

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// Request IDs and the request log (docs/observability.md). Every request
// gets an ID: the one a trusted proxy sent in log.request_id_header, or a
// new random one. It is in every log line written with the request's
// context (requestIDs), in the response, and in the request the upstream
// app receives, so that the logs of the proxy, the broker and the app can
// be joined. Forward-auth's 2xx answers are the exception: a proxy passes
// on none of their headers but those it is told to copy, so the ID would
// reach nobody (a proxy that wants the broker's logs to carry its ID sends
// it, from a peer in trusted_proxies.from).

// DefaultRequestIDHeader is the header that carries the request ID when
// log.request_id_header is not set.
const DefaultRequestIDHeader = "X-Request-Id"

// maxRequestID bounds a request ID taken from a proxy.
const maxRequestID = 128

// requestInfo is what the broker knows of a request from its start, in the
// request's context (entry). It is also the request's responseWriter and
// its context: one allocation for the three.
type requestInfo struct {
	ctx    requestContext // the context entry gives the request
	facts  proxyfix.Facts // as proxyfix established them: the client address
	start  time.Time      // when entry began; set only while the request log (debug) is on
	login  audit.Event    // the login event audit wrote for this request, if any (timeCallback)
	writer responseWriter

	// The request ID (ID): sentID when a trusted proxy sent one
	// (sentRequestID), else made on first use. Forward-auth's answers, which
	// only proxies read, mostly need none.
	sentID string
	idOnce sync.Once
	id     string
	idv    [1]string // id, as the value of the ID headers, request and response

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
func (info *requestInfo) ID() string {
	info.idOnce.Do(func() {
		info.id = info.sentID
		if info.id == "" {
			info.id = newRequestID()
		}
		info.idv[0] = info.id
	})
	return info.id
}

// idValue is ID as a header value, shared by the request's ID headers: it
// is never appended to (capacity 1).
func (info *requestInfo) idValue() []string {
	info.ID()
	return info.idv[:1:1]
}

// client is the client address, as proxyfix established it (clientAddr).
func (info *requestInfo) client() string {
	if info.facts.ClientIP.IsValid() {
		return info.facts.ClientIP.String()
	}
	return info.facts.ClientNode
}

type requestInfoKey struct{}

// requestContext is the context entry gives a request: the connection's,
// with the requestInfo and proxyfix's facts as values, answered by one
// Value method instead of two context.WithValue (two allocations and a
// longer chain for every lookup).
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
func RequestIDFrom(ctx context.Context) string {
	if info := requestInfoFrom(ctx); info != nil {
		return info.ID()
	}
	return ""
}

// sentRequestID is the ID a trusted proxy sent in log.request_id_header,
// when the direct peer (facts') is in trusted_proxies.from and the value is
// one plain token; "" otherwise, and the request gets a new one. A client
// cannot choose the ID, nor put anything into the log through it.
func (s *Server) sentRequestID(r *http.Request, facts *proxyfix.Facts) string {
	if name := s.cfg.Log.RequestIDHeader; name != "" && s.fix.Listed(facts.Original.Peer) {
		if v := r.Header.Values(name); len(v) == 1 && validRequestID(v[0]) {
			return v[0]
		}
	}
	return ""
}

// newRequestID is 16 characters of base64url: 96 random bits, unique
// across replicas. A request ID is no secret, so the runtime's fast
// generator does.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var out [16]byte
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// validRequestID accepts 1 to maxRequestID letters, digits and -_.:+/=,
// which covers UUIDs, nginx's $request_id and W3C traceparent.
func validRequestID(v string) bool {
	if v == "" || len(v) > maxRequestID {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("-_.:+/=", c) >= 0) {
			return false
		}
	}
	return true
}

// requestIDs is a slog.Handler that adds the request's ID (request_id) to
// every record logged with a request's context: New wraps the logger it is
// given, so that every line the broker writes for a request can be joined
// with the others.
type requestIDs struct{ slog.Handler }

// withRequestIDs wraps l's handler in requestIDs, once.
func withRequestIDs(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(requestIDs); ok {
		return l
	}
	return slog.New(requestIDs{l.Handler()})
}

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(attrs)}
}

func (h requestIDs) WithGroup(name string) slog.Handler { return requestIDs{h.Handler.WithGroup(name)} }

// requestIDHeaderProblems checks log.request_id_header: a header name that
// carries nothing secret, and that clients cannot already use to pose as
// the broker (identity headers, the assertion's).
func (c Config) requestIDHeaderProblems() []error {
	name := c.Log.RequestIDHeader
	if name == "" {
		return nil
	}
	bad := func(why string) []error {
		return []error{fmt.Errorf("log.request_id_header: %q %s", name, why)}
	}
	if len(name) > 64 || !validCookieName(name) || strings.Contains(name, "_") {
		return bad("must be a header name of letters, digits and '-'")
	}
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "Host", "Forwarded", "X-Forwarded-For":
		return bad("is not a request ID header")
	}
	if relay.IsIdentityHeader(name) || (c.Assertion.Header != "" && strings.EqualFold(name, c.Assertion.Header)) {
		return bad("is a header the broker sets for the apps")
	}
	return nil
}

// requestIDHeaderWarnings: a request ID header that is never believed.
func (c Config) requestIDHeaderWarnings() []string {
	if c.Log.RequestIDHeader != "" && len(c.TrustedProxies.From) == 0 {
		return []string{"log.request_id_header: request IDs are taken only from peers in trusted_proxies.from, which is empty: every request gets a new ID"}
	}
	return nil
}
