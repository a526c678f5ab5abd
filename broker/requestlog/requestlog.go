// Package requestlog is the request ID (docs/observability.md): the ID
// every request gets, the one a trusted proxy sent when it is one plain
// token (Valid) or a new random one (New), kept per request and made only
// when first used (ID), and the slog handler that adds it to every line
// logged with the request's context (WithIDs), so that the logs of the
// proxy, the broker and the app can be joined. It also checks the header
// that carries it (HeaderProblems). Which peer is believed, and where the
// ID is sent, is the broker's.
package requestlog

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

	"github.com/oidc-broker/oidc-broker/broker/relay"
)

// DefaultHeader is the header that carries the request ID when
// log.request_id_header is not set.
const DefaultHeader = "X-Request-Id"

// MaxLen bounds a request ID taken from a proxy.
const MaxLen = 128

// ID is one request's ID: Sent when a trusted proxy sent one, else made on
// first use (forward-auth's answers, which only proxies read, mostly need
// none). Its zero value is ready; it must not be copied after first use.
type ID struct {
	Sent string // the proxy's ID, set before first use; "" for a new one

	once sync.Once
	id   string
	v    [1]string // id, as the value of the ID headers, request and response
}

// String is the request's ID.
func (i *ID) String() string {
	i.once.Do(func() {
		i.id = i.Sent
		if i.id == "" {
			i.id = New()
		}
		i.v[0] = i.id
	})
	return i.id
}

// Value is the ID as a header value, shared by the request's ID headers:
// it is never appended to (capacity 1).
func (i *ID) Value() []string {
	_ = i.String()
	return i.v[:1:1]
}

// ContextKey is the context key under which a request's context holds its
// *ID (From).
type ContextKey struct{}

// From returns the ID of the request whose context ctx is; "" when ctx
// holds none.
func From(ctx context.Context) string {
	if id, _ := ctx.Value(ContextKey{}).(*ID); id != nil {
		return id.String()
	}
	return ""
}

// New is 16 characters of base64url: 96 random bits, unique across
// replicas. A request ID is no secret, so the runtime's fast generator
// does.
func New() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var out [16]byte
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// Valid accepts 1 to MaxLen letters, digits and -_.:+/=, which covers
// UUIDs, nginx's $request_id and W3C traceparent: nothing else gets into
// the log through a proxy's ID.
func Valid(v string) bool {
	if v == "" || len(v) > MaxLen {
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

// handler is a slog.Handler that adds the request's ID (request_id) to
// every record logged with a request's context.
type handler struct{ slog.Handler }

// WithIDs wraps l's handler, once, so that every line logged with a
// request's context carries its ID.
func WithIDs(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(handler); ok {
		return l
	}
	return slog.New(handler{l.Handler()})
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.Handler.WithGroup(name)} }

// HeaderProblems checks log.request_id_header (name; "" is the default): a
// header name that carries nothing secret, and that clients cannot already
// use to pose as the broker (identity headers, the assertion's,
// assertionHeader).
func HeaderProblems(name, assertionHeader string) []error {
	if name == "" {
		return nil
	}
	bad := func(why string) []error {
		return []error{fmt.Errorf("log.request_id_header: %q %s", name, why)}
	}
	if len(name) > 64 || !headerName(name) {
		return bad("must be a header name of letters, digits and '-'")
	}
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "Host", "Forwarded", "X-Forwarded-For":
		return bad("is not a request ID header")
	}
	if relay.IsIdentityHeader(name) || (assertionHeader != "" && strings.EqualFold(name, assertionHeader)) {
		return bad("is a header the broker sets for the apps")
	}
	return nil
}

// headerName: one or more letters, digits and '-'.
func headerName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}
