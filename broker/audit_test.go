package broker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/broker/audit"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostileidp"
)

// reopen rebuilds e's broker with its configuration and options, edited;
// call it before the broker's first request.
func reopen(e *env, edit func(*Options)) {
	e.t.Helper()
	opts := e.server.opts
	edit(&opts)
	srv, err := New(e.server.cfg, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = e.server.Close()
	e.server = srv
	e.broker.Config.Handler.(*deferred).Handler = srv.Handler()
}

// tokenTap records every token an IdP's token endpoint hands out.
type tokenTap struct {
	mu     sync.Mutex
	tokens []string
}

// tapTokens puts a tokenTap in front of the env's IdP id. Call it before
// the first request to that IdP.
func tapTokens(e *env, id string) *tokenTap {
	tt := &tokenTap{}
	interceptIdP(e, id, "/oauth/token", func(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
		var answer map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		tt.mu.Lock()
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if v, _ := answer[k].(string); v != "" {
				tt.tokens = append(tt.tokens, v)
			}
		}
		tt.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	return tt
}

// TestSecretsNeverLogged runs every flow at debug level with a JSON logger
// and checks that no secret reaches the log, in any of the encodings it
// travels in: client secrets, authorization codes and states, ID, access
// and refresh tokens, session cookies, the CSRF token, passwords, Basic
// credentials, logout tokens and signed assertions. (The demo IdP's
// password, "demo", is too common a word to look for.)
func TestSecretsNeverLogged(t *testing.T) {
	e, offset := clockEnv(t, withScopes("offline_access"), withAssertion(nil), withLocal(t, "/api/"), withWrongSecret("beta"))
	var logs logBuffer
	reopen(e, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	li := newLogoutIssuer(e, "alpha")
	tap := tapTokens(e, "alpha")
	secrets := map[string]string{} // the secret → what it is
	add := func(what, v string) {
		t.Helper()
		if len(v) < 8 {
			t.Fatalf("%s %q: too short to look for", what, v)
		}
		secrets[v] = what
	}
	add("client secret", clientSecret("alpha"))
	add("client secret", clientSecret("beta"))
	add("client secret", "not-"+clientSecret("beta"))
	const wrong = "Wr0ng pa55/word+%x"

	// A login, its code, its state, its session, the app's assertion.
	a := newBrowser()
	cb := e.startLogin(a, "alpha", "alice", "/")
	add("code", cb.Query().Get("code"))
	add("state", cb.Query().Get("state"))
	if resp := e.do(a, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", resp.StatusCode, body(resp))
	}
	add("session", e.sessionToken(a))
	_, v := e.appView(a, "/", nil)
	add("assertion", v.Headers[assertion.DefaultHeader])
	// The callback replayed; a login the IdP refuses (beta's secret is wrong).
	if resp := e.do(a, http.MethodGet, cb.String(), nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	e.client = newBrowser()
	if resp := e.login("beta", "alice", "/"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("beta: %d", resp.StatusCode)
	}

	// Back-channel logout of another login.
	b := e.loginAs("alpha", "bob", "sid-b")
	e.idps["alpha"].tamper.Set(func(tp *hostileidp.IdP) { tp.Claims = nil })
	add("session", e.sessionToken(b))
	logout := li.sign(t, li.claims("alpha-bob", "sid-b"), nil)
	add("logout token", logout)
	if resp := e.postLogout("alpha", url.Values{"logout_token": {logout}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", resp.StatusCode, body(resp))
	}

	// A local login: the wrong password, then the right one.
	c := newBrowser()
	state := e.localForm(c, "/")
	add("local state", state)
	add("password", wrong)
	add("password", "alice-pw")
	if resp := e.postLocal(c, creds(state, "alice", wrong)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp := e.postLocal(c, creds(state, "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right password: %d %s", resp.StatusCode, body(resp))
	}
	add("session", e.sessionToken(c))

	// HTTP Basic on a Basic path: wrong, then right.
	for password, want := range map[string]int{wrong: http.StatusUnauthorized, "alice-pw": http.StatusOK} {
		cred := base64.StdEncoding.EncodeToString([]byte("alice:" + password))
		add("basic", cred)
		if resp := e.request(nil, http.MethodGet, "/api/x", map[string]string{"Authorization": "Basic " + cred}); resp.StatusCode != want {
			t.Fatalf("basic with %q: %d, want %d", password, resp.StatusCode, want)
		}
	}

	// The tokens expire: the next request refreshes them.
	offset.Store(int64(pastAccessToken))
	if resp := e.request(a, http.MethodGet, "/oauth2/auth", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("forward-auth after expiry: %d", resp.StatusCode)
	}
	// Sign-out, with the form's CSRF token.
	page := body(e.do(a, http.MethodGet, e.broker.URL+"/oauth2/sign_out", nil))
	_, after, _ := strings.Cut(page, `name="csrf" value="`)
	csrf := after[:max(strings.IndexByte(after, '"'), 0)]
	add("csrf", csrf)
	if resp := e.do(a, http.MethodPost, e.broker.URL+"/oauth2/sign_out", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	tap.mu.Lock()
	for _, tok := range tap.tokens {
		add("token", tok)
	}
	tap.mu.Unlock()
	if len(tap.tokens) < 7 { // access, refresh and ID token of two logins, and of the refresh
		t.Fatalf("only %d tokens seen", len(tap.tokens))
	}

	out := logs.String()
	for s, what := range secrets {
		for _, form := range encodings(s) {
			if len(form) >= 8 && strings.Contains(out, form) {
				t.Errorf("the log contains a %s (as %q)", what, form)
			}
		}
	}
	checkLogLines(t, out, map[string]int{"login_started": 4, "login_succeeded": 3, "login_failed": 3, "backchannel_logout": 1,
		"basic_auth_refused": 1, "session_refreshed": 1, "logout": 1})
}

// encodings are the forms a secret travels in: as is, percent-encoded,
// base64, JSON-escaped, and a JWT's payload and signature on their own.
func encodings(s string) []string {
	j, _ := json.Marshal(s)
	out := []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1]),
		base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
	if parts := strings.Split(s, "."); len(parts) == 3 {
		out = append(out, parts[1], parts[2])
	}
	return out
}

// checkLogLines checks a JSON log: every line parses; the audit events
// appear as often as want says; each audit line names its event, client
// and request ID; request lines have no query.
func checkLogLines(t *testing.T, out string, want map[string]int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	events, requests := map[string]int{}, 0
	for _, line := range lines {
		var rec map[string]any
		if err := json.NewDecoder(bytes.NewReader([]byte(line))).Decode(&rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if ev, ok := rec["event"].(string); ok {
			events[ev]++
			if id, _ := rec["request_id"].(string); !validRequestID(id) || rec["client"] != "127.0.0.1" {
				t.Errorf("audit line without request ID or client: %s", line)
			}
		}
		if rec["msg"] == "request" {
			requests++
			if p, _ := rec["path"].(string); p == "" || strings.Contains(p, "?") || rec["status"] == nil || rec["request_id"] == nil {
				t.Errorf("request line %s", line)
			}
		}
	}
	for ev, n := range want {
		if events[ev] != n {
			t.Errorf("%d %s events in the log, want %d", events[ev], ev, n)
		}
	}
	if requests < 15 {
		t.Errorf("only %d request lines in %d lines", requests, len(lines))
	}
}

// TestAnonymousAuditLinesBounded: a flood of refused logins logs at most
// audit.LinesPerSecond lines a second, says how many it dropped, and counts
// every one in the metrics.
func TestAnonymousAuditLinesBounded(t *testing.T) {
	var offset atomic.Int64
	base := time.Now()
	e := newEnv(t, withClock(func() time.Time { return base.Add(time.Duration(offset.Load())) }))
	h := e.broker.Config.Handler
	const flood = 3 * audit.LinesPerSecond
	for range flood {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/callback/alpha?state=forged&code=x", nil))
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("forged callback: %d", rec.Code)
		}
	}
	if n := strings.Count(e.logs.String(), `msg="login refused"`); n != audit.LinesPerSecond {
		t.Errorf("%d login refused lines in one second, want %d", n, audit.LinesPerSecond)
	}
	offset.Store(int64(time.Second))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/callback/alpha?state=forged&code=x", nil))
	if want := fmt.Sprintf(`msg="audit lines suppressed" count=%d`, flood-audit.LinesPerSecond); !strings.Contains(e.logs.String(), want) {
		t.Errorf("no line %q", want)
	}
	expect(t, scrape(t, e.server), map[string]float64{
		`oidc_broker_logins_failed_total{provider="alpha",reason="unknown_state"}`: flood + 1,
	})
}

// TestAnonymousLogLinesBounded: the other lines anonymous clients can cause
// share the audit lines' budget: a flood of unreadable sign-out forms logs
// audit.LinesPerSecond lines in a second, not one each.
func TestAnonymousLogLinesBounded(t *testing.T) {
	base := time.Now()
	e := newEnv(t, withClock(func() time.Time { return base }))
	h := e.broker.Config.Handler
	for range 3 * audit.LinesPerSecond {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/sign_out", strings.NewReader("--x--\r\n"))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnsupportedMediaType {
			t.Fatalf("multipart sign-out: %d", rec.Code)
		}
	}
	if n := strings.Count(e.logs.String(), `msg="sign-out form refused"`); n != audit.LinesPerSecond {
		t.Errorf("%d sign-out form refused lines in one second, want %d", n, audit.LinesPerSecond)
	}
}
