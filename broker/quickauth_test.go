package broker

import (
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/providers"
)

// headerWriter is a ResponseWriter that keeps one header map, cleared for
// each answer, so that AllocsPerRun counts the broker's allocations only
// (net/http makes the map of each response itself).
type headerWriter struct {
	h      http.Header
	status int
}

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(code int)        { w.status = code }

// quickServer is benchServer with a logger at level (debug turns the
// request log on, which makes forward-auth go through entry's request
// state: quickAuth declines).
func quickServer(t *testing.T, level slog.Level, configure ...func(*Config)) (*Server, *http.Cookie) {
	t.Helper()
	cfg := Config{Providers: []providers.Config{{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s"}}}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	token, err := srv.sessions.Create(t.Context(), providers.Identity{Provider: "kc", Subject: "248289761001", Email: "jane@example.com",
		EmailVerified: true, Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops", "admins"}, AuthTime: time.Now()}, session.Tokens{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, &http.Cookie{Name: DefaultCookieName, Value: token}
}

// TestForwardAuthAllocations guards the cost of forward-auth's most
// frequent answer, 202 for a signed-in session: entry answers it without
// its request state (480 bytes) and without a copy of the request (quickAuth),
// and nothing else on the way allocates. One allocation more fails.
func TestForwardAuthAllocations(t *testing.T) {
	srv, cookie := quickServer(t, slog.LevelInfo)
	assertNoAllocations(t, srv, cookie, "forward-auth with a session")
}

// TestForwardAuthAllocationsRedis is TestForwardAuthAllocations with the
// Redis store, its session cached: the token cache answers without a
// context made for the read (session.Manager.Peek, store.Redis.FindCached).
func TestForwardAuthAllocationsRedis(t *testing.T) {
	srv, cookie := redisBenchServer(t, nil)
	warmSessionCache(t, srv, cookie)
	assertNoAllocations(t, srv, cookie, "forward-auth with a cached Redis session")
}

// assertNoAllocations checks that /oauth2/auth with cookie answers 202 for
// the test session's user, and allocates nothing doing it.
func assertNoAllocations(t *testing.T, srv *Server, cookie *http.Cookie, what string) {
	t.Helper()
	h := srv.Handler()
	req := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
	req.AddCookie(cookie)
	w := &headerWriter{h: http.Header{}}
	run := func() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
	}
	run()
	if w.status != http.StatusAccepted || w.h.Get(HeaderUser) != "kc:248289761001" {
		t.Fatalf("%s: %d, user %q; want 202 for kc:248289761001", what, w.status, w.h.Get(HeaderUser))
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("%s: %v allocations a check; want 0", what, n)
	}
}

// TestQuickAuthSameAnswer compares quickAuth's answers with those of the
// whole path (entry's request state, the handlers; taken when the request
// log is on): the same status and the same header fields, for allowed and
// public requests described by a trusted proxy or not, and the same
// answers where quickAuth declines.
func TestQuickAuthSameAnswer(t *testing.T) {
	configure := func(c *Config) {
		c.TrustedProxies.From = []string{"192.0.2.0/24"}
		admins := AccessRule{Groups: GroupCondition{OneOf: []string{"admins"}}}
		c.Routes = []Route{
			{Path: "/public/", AccessRule: AccessRule{Public: true}},
			{Path: "/admin/", AccessRule: admins},
		}
	}
	quick, quickCookie := quickServer(t, slog.LevelInfo, configure)
	whole, wholeCookie := quickServer(t, slog.LevelDebug, configure)
	for _, c := range []struct {
		name    string
		peer    string
		hdr     map[string]string
		cookie  bool
		want    int
		quicker bool // quickAuth answers
	}{
		{"signed in, not described", "198.51.100.7:1234", nil, true, http.StatusAccepted, true},
		{"signed in, described by a trusted proxy", "192.0.2.1:1234", nginx("/admin/x", "GET"), true, http.StatusAccepted, true},
		{"signed in, public, described", "192.0.2.1:1234", nginx("/public/x", "GET"), true, http.StatusAccepted, true},
		{"describing headers of an untrusted peer", "198.51.100.7:1234", nginx("/public/x", "GET"), true, http.StatusAccepted, true},
		{"a client's identity header", "198.51.100.7:1234", map[string]string{HeaderUser: "kc:mallory"}, true, http.StatusAccepted, true},
		{"no session", "192.0.2.1:1234", nginx("/admin/x", "GET"), false, http.StatusUnauthorized, false},
		{"no session, public", "192.0.2.1:1234", nginx("/public/x", "GET"), false, http.StatusAccepted, false},
		{"an unreadable described path", "192.0.2.1:1234", nginx("/admin/%ff", "GET"), true, http.StatusBadRequest, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// n: the allocations of the same request again, 0 when
			// quickAuth answers (TestForwardAuthAllocations), at least
			// entry's request state otherwise
			answer := func(srv *Server, cookie *http.Cookie) (w *httptest.ResponseRecorder, n float64) {
				req := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
				req.RemoteAddr = c.peer
				for k, v := range c.hdr {
					req.Header.Set(k, v)
				}
				if c.cookie {
					req.AddCookie(cookie)
				}
				w = httptest.NewRecorder()
				srv.Handler().ServeHTTP(w, req)
				hw := &headerWriter{h: http.Header{}}
				n = testing.AllocsPerRun(10, func() {
					clear(hw.h)
					srv.Handler().ServeHTTP(hw, req)
				})
				return w, n
			}
			q, nq := answer(quick, quickCookie)
			wh, _ := answer(whole, wholeCookie)
			if q.Code != c.want || wh.Code != c.want {
				t.Fatalf("status %d (quick) and %d (whole path); want %d", q.Code, wh.Code, c.want)
			}
			qh, wf := q.Header(), wh.Header()
			if c.want >= 300 {
				// the request ID differs; it is there on both
				if qh.Get(DefaultRequestIDHeader) == "" || wf.Get(DefaultRequestIDHeader) == "" {
					t.Errorf("no %s on a refusal: %q, %q", DefaultRequestIDHeader, qh.Get(DefaultRequestIDHeader), wf.Get(DefaultRequestIDHeader))
				}
				qh, wf = qh.Clone(), wf.Clone()
				qh.Del(DefaultRequestIDHeader)
				wf.Del(DefaultRequestIDHeader)
			}
			if !maps.EqualFunc(qh, wf, slices.Equal) {
				t.Errorf("answers differ:\nquick %v\nwhole %v", qh, wf)
			}
			if qh.Get(HeaderUser) == "kc:mallory" {
				t.Errorf("the client's %s came back", HeaderUser)
			}
			if took := nq == 0; took != c.quicker {
				t.Errorf("quickAuth answered: %v (%v allocations); want %v", took, nq, c.quicker)
			}
		})
	}
}

// BenchmarkForwardAuthOwn is BenchmarkForwardAuth without the test's
// recorder: one header map, cleared for each check, as in
// TestForwardAuthAllocations, so that what it measures is the broker's
// own work on a check (net/http makes the map of each response itself).
func BenchmarkForwardAuthOwn(b *testing.B) {
	srv, cookie := benchServer(b)
	h := srv.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
		req.AddCookie(cookie)
		w := &headerWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.status != http.StatusAccepted {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}
