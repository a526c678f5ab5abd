package broker

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/pages"
	"github.com/oidc-broker/oidc-broker/broker/relay"
	"github.com/oidc-broker/oidc-broker/broker/session"
)

// entry wraps next in what every request passes, in an order that is the
// security model, outermost first:
//
//  1. strip client-sent identity headers (before anything can read them);
//  2. proxyfix: establish scheme, host, prefix and client address; then
//     the request ID (requestlog.go);
//  3. with ownRoutes, the external path prefix (public_url's path) is
//     removed, and a request outside it is not found; an embedding
//     program's handler sees its paths as they came; then a path whose
//     decoded form holds a control character or invalid UTF-8 gets 400,
//     never a rule decision (pathcheck.go; on forward-auth, the URI the
//     trusted proxy reports);
//  4. allowed_hosts: refuse unknown hosts before any URL is built;
//  5. the session (cookie chosen by the external origin);
//  6. next: the broker's routes, or an embedding program's handler behind
//     Require or Protect.
//
// entry runs on every request to every app behind a forward-auth proxy, so
// its steps share one request state (requestInfo: one allocation, which is
// also the response writer) and derive one context and one copy of the
// request. At the end it commits the session if a handler changed it and
// did not already, and writes the debug line of the request log.
// Forward-auth's most frequent answer, 202 for a signed-in session, needs
// neither: quickAuth (forwardauth.go) makes the same checks and answers
// it with no allocation at all. A check added here must be added there too
// (or make quickAuth decline): TestQuickAuthSameAnswer compares the two.
func (s *Server) entry(next http.Handler, ownRoutes bool) http.Handler {
	idHeader := http.CanonicalHeaderKey(cmp.Or(s.cfg.Log.RequestIDHeader, DefaultRequestIDHeader))
	prefix := ""
	if s.public != nil {
		prefix = s.public.Prefix
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relay.StripIdentityHeaders(r.Header, s.stripAlso...) // 1
		if requestInfoFrom(r.Context()) != nil {
			// Entered already (Handler behind Protect, which is not how
			// it is meant to be mounted): one ID, one session; the
			// broker's routes still lose the prefix.
			if prefix != "" && ownRoutes {
				u := stripPrefix(r.URL, prefix)
				if u == nil {
					http.NotFound(w, r)
					return
				}
				r = r.WithContext(r.Context()) // a copy, for its URL
				r.URL = u
			}
			next.ServeHTTP(w, r)
			return
		}

		facts, remoteAddr := s.fix.Resolve(r) // 2
		u := r.URL                            // 3
		if prefix != "" && ownRoutes {
			u = stripPrefix(r.URL, prefix)
		}
		// Forward-auth, asked on every request to the apps behind a proxy,
		// reads the session without an scs context when it can, and its
		// 2xx answers need no request ID (requestlog.go).
		forwardAuth := ownRoutes && u != nil && u.Path == "/oauth2/auth"
		var peek peeked
		if forwardAuth && s.quick {
			// The common answer, 202 for a signed-in session, without the
			// request state or a copy of the request (quickAuth);
			// anything else goes on below with what was read.
			if s.quickAuth(w, r, u, &facts, &peek) {
				return
			}
		}

		info := &requestInfo{facts: facts}
		info.ctx = requestContext{Context: r.Context(), info: info}
		info.rid.Sent = s.sentRequestID(r, &info.facts)
		var ctx context.Context = &info.ctx
		if s.log.Enabled(ctx, slog.LevelDebug) {
			info.start = time.Now()
			defer s.logRequest(ctx, r, info)
		}
		info.prefixKept = prefix != "" && !ownRoutes
		rw := &info.writer
		rw.ResponseWriter, rw.header, rw.info, rw.quietID = w, idHeader, info, forwardAuth
		if !forwardAuth {
			id := info.idValue()
			if r.Header != nil {
				r.Header[idHeader] = id
			}
			w.Header()[idHeader] = id
		}
		if u == nil {
			pages.Early(rw, r, http.StatusNotFound, "not_found", "404 page not found", info.ID())
			return
		}
		if !s.pathReadable(r, u, forwardAuth) { // 3, the path
			pages.Early(rw, r, http.StatusBadRequest, "bad_request", "Bad Request: control character or invalid UTF-8 in the path", info.ID())
			return
		}

		if !hostAllowed(s.allowedHosts, facts.Host) { // 4
			s.log.DebugContext(ctx, "host not allowed", "host", facts.Host)
			pages.Early(rw, r, http.StatusBadRequest, "bad_host", "Bad Request: unknown host", info.ID())
			return
		}

		varyCookie(w.Header()) // 5
		o := s.originFrom(facts)
		token, _ := session.CookieValue(r, s.sessions.CookieName(o.Secure(), o.Prefix))
		var err error
		if forwardAuth {
			// A session whose tokens need no refresh, or none, is read
			// without scs (requestInfo.readOnly).
			v, known, perr := peek.v, peek.known, peek.err
			if !peek.done {
				v, known, perr = s.sessions.Peek(ctx, token, !needsSession(u.Path))
			}
			switch {
			case perr != nil:
				ctx, err = s.sessions.Unavailable(ctx, perr)
			case known && (v == nil || s.readOnlyUsable(v)):
				info.peeked, info.readOnly = v, true
			default:
				ctx, err = s.sessions.Load(ctx, token, !needsSession(u.Path))
			}
		} else {
			ctx, err = s.sessions.Load(ctx, token, !needsSession(u.Path))
		}
		r = r.WithContext(ctx) // the one copy
		r.URL = u
		if facts.Host != "" {
			r.Host = facts.Host
		}
		if remoteAddr != "" {
			r.RemoteAddr = remoteAddr
		}
		switch {
		case err != nil && ctx.Err() != nil:
			// The client went away while the store was asked: nobody to
			// answer, and no outage to report.
			s.log.DebugContext(ctx, "request canceled while its session was read", "error", err)
			return
		case errors.Is(err, errSessionStore):
			// Fail closed without failing everything: routes that need the
			// session answer 503; public ones (and those the access rules
			// find public) go on with an empty session that is never saved.
			if needsSession(u.Path) {
				s.sessionUnavailable(rw, r, err)
				return
			}
			s.logStoreError(ctx, "session load failed", err)
		case err != nil:
			s.log.WarnContext(ctx, "session ignored", "error", err)
		}
		if !info.readOnly {
			rw.sessions, rw.r, rw.o, rw.log = s.sessions, r, o, s.log
		}
		next.ServeHTTP(rw, r) // 6
		rw.commit()
	})
}

// stripPrefix is u without prefix at the start of its path, as
// http.StripPrefix removes it, or nil when the path does not start with it.
func stripPrefix(u *url.URL, prefix string) *url.URL {
	p := strings.TrimPrefix(u.Path, prefix)
	rp := strings.TrimPrefix(u.RawPath, prefix)
	if len(p) == len(u.Path) || (u.RawPath != "" && len(rp) == len(u.RawPath)) {
		return nil
	}
	stripped := *u
	stripped.Path, stripped.RawPath = p, rp
	return &stripped
}

// logRequest writes the request's line at debug level: method, path
// without query (queries carry codes and states), status, duration, bytes,
// client address.
func (s *Server) logRequest(ctx context.Context, r *http.Request, info *requestInfo) {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	status := info.writer.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("method", r.Method), slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status), slog.Duration("duration", time.Since(info.start)), slog.Int64("bytes", info.writer.bytes),
		slog.String("client", info.client()))
}

// responseWriter is what the broker's handlers write to. It commits the
// session just before the response header goes out (for handlers that did
// not call saveSession themselves), notes the status and size for the
// request log, and keeps the request ID the only value of its header (an
// upstream app's response may bring its own).
type responseWriter struct {
	http.ResponseWriter

	// The session (set once it is loaded).
	sessions *session.Manager
	r        *http.Request
	o        origin
	log      *slog.Logger
	saved    bool

	// The request ID's header (see WriteHeader) and the request log.
	header  string
	info    *requestInfo
	quietID bool // no ID on a 2xx answer (forward-auth's)
	status  int
	bytes   int64
}

func (w *responseWriter) commit() {
	if err := w.saveNow(); err != nil {
		w.log.ErrorContext(w.r.Context(), "session save failed", "error", err)
	}
}

// saveNow commits once; later calls do nothing.
func (w *responseWriter) saveNow() error {
	if w.saved || w.sessions == nil {
		return nil
	}
	w.saved = true
	return w.sessions.Save(w.ResponseWriter, w.r, w.o.Secure(), w.o.Prefix)
}

// saveSession commits the session of the response w now, so that a handler
// can turn a store failure into an error page. Outside entry (a handler
// used on its own) it does nothing.
func saveSession(w http.ResponseWriter) error {
	if rw, ok := w.(*responseWriter); ok {
		return rw.saveNow()
	}
	return nil
}

// saveSessionCtx is saveSession with the request's context replaced by
// ctx, one derived from it (session.Manager.IndexOnCommit's), for the
// commit.
func saveSessionCtx(w http.ResponseWriter, ctx context.Context) error {
	if rw, ok := w.(*responseWriter); ok && !rw.saved && rw.sessions != nil {
		rw.r = rw.r.WithContext(ctx)
	}
	return saveSession(w)
}

func (w *responseWriter) WriteHeader(code int) {
	w.commit()
	if w.status == 0 && code >= 200 {
		w.status = code
		if !w.quietID || code >= 300 {
			if h, id := w.Header(), w.info.ID(); len(h[w.header]) != 1 || h[w.header][0] != id {
				h[w.header] = []string{id}
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes over the connection for a protocol switch (WebSockets: the
// reverse proxy writes the 101 itself, through the hijacked connection).
// serveUpstream saved the session before.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}
