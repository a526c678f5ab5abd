package broker

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/demo"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/demologin"
	"github.com/oidc-broker/oidc-broker/providers"
)

// BenchmarkCallback is callback processing: GET /oauth2/callback/{provider}
// with a fresh, valid code from an in-process demo IdP (zitadel's op
// library) on loopback. One op is the whole callback as the broker's handler
// runs it: the session and the pending login, the code exchange at the
// token endpoint (client_secret_basic, PKCE), the ID token's verification
// (RS256, the IdP's keys cached after the first login), the userinfo call
// (the demo IdP publishes the endpoint, so "auto" calls it), then the new
// session (renewed token, identity, tokens, index) and the redirect. The
// login before it (start, the IdP's form) is not timed.
//
// The IdP runs in the same process, so its share is measured too: the wall
// time inside its handler during the callbacks (idp-ns/op: mostly the RS256
// signature of the ID token), and the rest (broker-ns/op: the broker's own
// work plus both HTTP round trips' client and server plumbing on loopback).
// idp-calls/op counts the requests that reached the IdP per callback.
// B/op and allocs/op count the IdP's allocations too. For the broker's
// CPU alone, profile it and focus on the handler:
//
//	go test ./broker -run '^$' -bench Callback -benchtime=3s -cpuprofile cb.prof
//	go tool pprof -top -cum -focus=handleCallback cb.prof
func BenchmarkCallback(b *testing.B) { benchCallback(b, SessionConfig{}) }

// benchCallback is BenchmarkCallback with the session settings sc.
func benchCallback(b *testing.B, sc SessionConfig) {
	idp := newTimedIdP(b)
	var bh deferred
	front := httptest.NewServer(&bh)
	b.Cleanup(front.Close)
	idp.register(b, front.URL+"/oauth2/callback/alpha")
	srv, err := New(Config{Providers: []providers.Config{{ID: "alpha", Name: "Alpha", Issuer: idp.srv.URL,
		ClientID: "broker-alpha", ClientSecret: clientSecret("alpha"), Scopes: []string{"openid", "email", "profile", "groups"}}},
		Session: sc}, Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	bh.Handler = srv.Handler()
	h := srv.Handler()

	callback := func() {
		b.StopTimer()
		req := benchLogin(b, front.URL, "alice")
		w := httptest.NewRecorder()
		b.StartTimer()
		idp.measuring.Store(true)
		h.ServeHTTP(w, req)
		idp.measuring.Store(false)
		if w.Code != http.StatusFound || w.Header().Get("Location") != "/app" || !setsCookie(w.Header(), DefaultCookieName) {
			b.Fatalf("callback: %d %v\n%s", w.Code, w.Header(), w.Body)
		}
	}
	callback() // discovery and the IdP's keys: once per provider, not per login
	idp.reset()
	b.ReportAllocs()
	for b.Loop() {
		callback()
	}
	idpNs := float64(idp.nanos.Load()) / float64(b.N)
	b.ReportMetric(idpNs, "idp-ns/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)-idpNs, "broker-ns/op")
	b.ReportMetric(float64(idp.calls.Load())/float64(b.N), "idp-calls/op")
}

// setsCookie reports whether h sets the cookie name (among the others a
// callback sets: the pending login's expiry comes first).
func setsCookie(h http.Header, name string) bool {
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, name+"=") {
			return true
		}
	}
	return false
}

// timedIdP is a demo IdP that adds up the time its handler takes while
// measuring is set.
type timedIdP struct {
	srv       *httptest.Server
	handler   deferred
	measuring atomic.Bool
	nanos     atomic.Int64
	calls     atomic.Int64
}

func newTimedIdP(b *testing.B) *timedIdP {
	idp := &timedIdP{}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !idp.measuring.Load() {
			idp.handler.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		idp.handler.ServeHTTP(w, r)
		idp.nanos.Add(int64(time.Since(start)))
		idp.calls.Add(1)
	}))
	b.Cleanup(idp.srv.Close)
	return idp
}

// register makes the IdP's handler, with the broker as its one client.
func (idp *timedIdP) register(b *testing.B, redirectURI string) {
	h, err := demo.NewIdP(demo.IdPConfig{Issuer: idp.srv.URL, Title: "alpha", Users: demo.DemoUsers("alpha"),
		Clients: []demo.Client{{ID: "broker-alpha", Secret: clientSecret("alpha"), RedirectURIs: []string{redirectURI}}}})
	if err != nil {
		b.Fatal(err)
	}
	idp.handler.Handler = h
}

func (idp *timedIdP) reset() { idp.nanos.Store(0); idp.calls.Store(0) }

// benchLogin signs user in at the IdP through the broker at base, as a new
// browser, up to the callback, and returns the callback request, unsent,
// with the browser's session cookie.
func benchLogin(b *testing.B, base, user string) *http.Request {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, form url.Values) *http.Response {
		var resp *http.Response
		var err error
		if method == http.MethodPost {
			resp, err = c.PostForm(u, form)
		} else {
			resp, err = c.Get(u)
		}
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	start := do(http.MethodGet, base+"/oauth2/start/alpha?rd=%2Fapp", nil)
	at, _ := url.Parse(start.Header.Get("Location"))
	cb := demologin.Walk(b, at, user, do, func(u *url.URL) bool { return strings.HasPrefix(u.String(), base+"/oauth2/callback/") })
	req := httptest.NewRequest(http.MethodGet, cb.String(), nil)
	for _, ck := range jar.Cookies(cb) {
		req.AddCookie(ck)
	}
	return req
}
