package broker

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/providers"
)

// BenchmarkForwardAuth measures the hot path: /oauth2/auth with a valid
// session in the memory store (cookie → session, decoded once and then
// found in the decode cache → identity → rules → headers).
func BenchmarkForwardAuth(b *testing.B) {
	srv, cookie := benchServer(b)
	benchForwardAuth(b, srv, cookie, http.StatusAccepted, nil)
}

// BenchmarkForwardAuthUnauthenticated is the same request without a cookie.
func BenchmarkForwardAuthUnauthenticated(b *testing.B) {
	srv, _ := benchServer(b)
	benchForwardAuth(b, srv, nil, http.StatusUnauthorized, nil)
}

// benchForwardAuth runs GET /oauth2/auth (with cookie, when not nil) in
// parallel and fails on an answer other than want, or one that check
// refuses.
func benchForwardAuth(b *testing.B, srv *Server, cookie *http.Cookie, want int, check func(http.Header) bool) {
	h := srv.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want || (check != nil && !check(w.Header())) {
				b.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
		}
	})
}

// benchServer is a broker with one signed-in session, made without an IdP:
// the session is written through the session manager directly.
func benchServer(b testing.TB, configure ...func(*Config)) (*Server, *http.Cookie) {
	b.Helper()
	cfg := Config{Providers: []providers.Config{{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s"}}}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	token, err := srv.sessions.Create(b.Context(), providers.Identity{Provider: "kc", Subject: "248289761001", Email: "jane@example.com",
		EmailVerified: true, Name: "Jane Doe", PreferredUsername: "jane", Groups: []string{"staff", "ops", "admins"}, AuthTime: time.Now()}, session.Tokens{})
	if err != nil {
		b.Fatal(err)
	}
	return srv, &http.Cookie{Name: DefaultCookieName, Value: token}
}
