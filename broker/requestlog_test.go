package broker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/requestlog"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
	"github.com/oidc-broker/oidc-broker/providers"
)

// TestRequestIDMadeAndSent: without a trusted proxy every request gets a
// new ID, which the response, the upstream app and the log lines carry; a
// client's own ID is not believed, and not passed on.
func TestRequestIDMadeAndSent(t *testing.T) {
	// The app reports the ID it received, and answers with one of its own.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "app-"+r.Header.Get("X-Request-Id"))
		_, _ = io.WriteString(w, strings.Join(r.Header.Values("X-Request-Id"), ","))
	}))
	defer app.Close()
	e := newEnv(t, withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}} }))
	first, second := e.request(nil, http.MethodGet, "/healthz", nil), e.request(nil, http.MethodGet, "/healthz", nil)
	a, b := first.Header.Get("X-Request-Id"), second.Header.Get("X-Request-Id")
	if len(a) != 16 || !validRequestID(a) || a == b {
		t.Errorf("request IDs %q and %q", a, b)
	}

	e.login("alpha", "alice", "/")
	resp := e.request(e.client, http.MethodGet, "/hello", map[string]string{"X-Request-Id": "client-chosen"})
	id, received := resp.Header.Values("X-Request-Id"), body(resp)
	if resp.StatusCode != http.StatusOK || len(id) != 1 || received != id[0] || !validRequestID(received) || received == "client-chosen" {
		t.Errorf("status %d: the app received request ID %q, the response carries %q", resp.StatusCode, received, id)
	}

	// Forward-auth's 2xx answers go only to proxies, which pass none of
	// their headers on unless told to: they carry no ID, and the request
	// line still has one. Its refusals, which Traefik and Caddy show the
	// client, carry one.
	if fa := e.get(e.broker.URL + "/oauth2/auth"); fa.StatusCode != http.StatusAccepted || fa.Header.Values("X-Request-Id") != nil {
		t.Errorf("forward-auth: %d, request ID %q", fa.StatusCode, fa.Header.Values("X-Request-Id"))
	}
	if !regexp.MustCompile(`msg=request method=GET path=/oauth2/auth status=202 duration=\S+ bytes=0 client=127.0.0.1 request_id=[-\w]{16}\n`).MatchString(e.logs.String()) {
		t.Errorf("no request line with an ID for forward-auth:\n%s", e.logs)
	}
	if fa := e.request(nil, http.MethodGet, "/oauth2/auth", nil); fa.StatusCode != http.StatusUnauthorized || !validRequestID(fa.Header.Get("X-Request-Id")) {
		t.Errorf("forward-auth without a session: %d, request ID %q", fa.StatusCode, fa.Header.Values("X-Request-Id"))
	}

	// The audit line of the login has the callback's ID.
	c := newBrowser()
	cb := e.startLogin(c, "beta", "bob", "/")
	callback := e.do(c, http.MethodGet, cb.String(), nil)
	rid := callback.Header.Get("X-Request-Id")
	logs := e.logs.settled(`msg=request method=GET path=/oauth2/callback/beta status=302 duration=`)
	if !strings.Contains(logs, `msg="login succeeded" provider=beta user=beta:beta-bob event=login_succeeded sub=beta-bob client=127.0.0.1 request_id=`+rid+"\n") {
		t.Errorf("no audit line with the callback's request ID %q:\n%s", rid, logs)
	}
	// The request line: method, path without the query, status.
	if !strings.Contains(logs, `msg=request method=GET path=/oauth2/callback/beta status=302 duration=`) ||
		!strings.Contains(logs, `client=127.0.0.1 request_id=`+rid+"\n") {
		t.Errorf("no request line for the callback:\n%s", logs)
	}
	if code := cb.Query().Get("code"); strings.Contains(logs, code) {
		t.Error("the authorization code reached the log")
	}
}

// TestRequestIDFromTrustedProxy: log.request_id_header is believed from a
// peer in trusted_proxies.from only, and only as one plain token.
func TestRequestIDFromTrustedProxy(t *testing.T) {
	cases := []struct {
		name   string
		from   []string
		values []string
		kept   bool
	}{
		{"trusted", []string{"127.0.0.1"}, []string{"0af7651916cd43dd8448eb211c80319c"}, true},
		{"traceparent", []string{"127.0.0.0/8"}, []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, true},
		{"untrusted peer", []string{"10.0.0.0/8"}, []string{"0af7651916cd43dd8448eb211c80319c"}, false},
		{"no trusted proxies", nil, []string{"0af7651916cd43dd8448eb211c80319c"}, false},
		{"log injection", []string{"127.0.0.1"}, []string{"x\" msg=forged level=ERROR"}, false},
		{"too long", []string{"127.0.0.1"}, []string{strings.Repeat("a", requestlog.MaxLen+1)}, false},
		{"two values", []string{"127.0.0.1"}, []string{"a1", "b2"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withConfig(func(cfg *Config) {
				cfg.Log.RequestIDHeader = "x-correlation-id"
				cfg.TrustedProxies.From = c.from
			}))
			req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/sign_in", nil)
			req.Header["X-Correlation-Id"] = c.values
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Values("X-Correlation-Id")
			if len(got) != 1 || !validRequestID(got[0]) || (got[0] == c.values[0]) != c.kept {
				t.Errorf("response request IDs %q for %q (kept: %v)", got, c.values, c.kept)
			}
			if !strings.Contains(e.logs.settled(" request_id="+got[0]+"\n"), " request_id="+got[0]+"\n") {
				t.Errorf("the log does not use request ID %q:\n%s", got[0], e.logs)
			}
			if strings.Contains(e.logs.String(), "forged") {
				t.Error("the client wrote into the log")
			}
		})
	}
}

// TestRequestIDFrom: an embedding program's handler reads the ID of the
// request whose context it has (requestContext answers requestlog's key).
func TestRequestIDFrom(t *testing.T) {
	info := &requestInfo{rid: requestlog.ID{Sent: "rid-1"}}
	info.ctx = requestContext{Context: context.Background(), info: info}
	if RequestIDFrom(&info.ctx) != "rid-1" || RequestIDFrom(context.Background()) != "" {
		t.Error("RequestIDFrom")
	}
}

// validRequestID is requestlog.Valid, for the tests.
func validRequestID(v string) bool { return requestlog.Valid(v) }

func TestRequestIDHeaderConfig(t *testing.T) {
	base := Config{Providers: []providers.Config{{ID: "x", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s"}}}
	for _, c := range []struct{ name, want string }{
		{"X-Request-Id", ""},
		{"traceparent", ""},
		{"Cookie", `log.request_id_header: "Cookie" is not a request ID header`},
		{"authorization", `log.request_id_header: "authorization" is not a request ID header`},
		{"X-Auth-Request-User", `log.request_id_header: "X-Auth-Request-User" is a header the broker sets for the apps`},
		{"X Request", `log.request_id_header: "X Request" must be a header name`},
		{"X_Request_Id", `log.request_id_header: "X_Request_Id" must be a header name`},
	} {
		cfg := base
		cfg.Log.RequestIDHeader = c.name
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	cfg := base
	cfg.Log.RequestIDHeader = "X-Request-Id"
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "log.request_id_header: request IDs are taken only from peers in trusted_proxies.from") {
		t.Errorf("warnings %q", w)
	}
}

// TestRequestLineOfWebSocket: a WebSocket's request line says 101, once
// the connection has ended.
func TestRequestLineOfWebSocket(t *testing.T) {
	ws := httptest.NewServer(wsecho.Handler())
	defer ws.Close()
	e := newEnv(t, withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/ws/", URL: ws.URL}} }))
	e.login("alpha", "alice", "/")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := wsecho.Dial(ctx, nil, e.client.Jar, e.broker.URL+"/ws/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := conn.Hello()
	if err != nil || hello.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
		t.Fatalf("the upstream got request ID %q, the client %q (%v)", hello.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"), err)
	}
	if err := conn.WriteText("hi"); err != nil {
		t.Fatal(err)
	}
	if got, err := conn.ReadText(); err != nil || got != "hi" {
		t.Fatalf("echo: %q %v", got, err)
	}
	conn.Close()
	want := "msg=request method=GET path=/ws/chat status=101 "
	for i := 0; i < 100 && !strings.Contains(e.logs.String(), want); i++ {
		time.Sleep(20 * time.Millisecond) // the broker notices the closed connection
	}
	if logs := e.logs.String(); !strings.Contains(logs, want) || !strings.Contains(logs, "request_id="+resp.Header.Get("X-Request-Id")+"\n") {
		t.Errorf("no request line %q with the 101's request ID %q:\n%s", want, resp.Header.Get("X-Request-Id"), logs)
	}
}
