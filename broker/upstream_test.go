package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/wsecho"
)

func TestUpstreamConfigProblems(t *testing.T) {
	const providers = "providers:\n  - {id: a, issuer: 'https://a', client_id: c, client_secret: s}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"both forms", "upstream: http://127.0.0.1:8080\nupstreams:\n  - {path: /, url: 'http://127.0.0.1:8081'}\n",
			[]string{"line 1: upstream: cannot be combined with upstreams"}},
		{"bad entries", "upstreams:\n" +
			"  - {path: api, url: 'http://a'}\n" +
			"  - {path: /a//b, url: 'http://a'}\n" +
			"  - {path: /a/../b, url: 'http://a'}\n" +
			"  - {path: /x, url: 'ftp://a'}\n" +
			"  - {path: /y, host: 'a.example:80', url: 'http://a'}\n" +
			"  - {path: /z, url: 'http://a?x=1'}\n" +
			"  - {url: 'http://a'}\n",
			[]string{"line 2: upstreams[0].path:", "line 3: upstreams[1].path:", "line 4: upstreams[2].path:",
				"line 5: upstreams[3].url:", "line 6: upstreams[4].host:", "line 7: upstreams[5].url:", "upstreams[6].path:"}},
		{"same host and path twice", "upstreams:\n  - {path: /api/, url: 'http://a'}\n  - {path: /api, url: 'http://b'}\n" +
			"  - {path: /api, host: a.example, url: 'http://c'}\n",
			[]string{"line 3: upstreams[1].path: upstreams[0] already serves this host and path"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("b.yaml", []byte(c.yaml+providers), lookupIn(nil))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%s", w, err)
				}
			}
			if c.name == "same host and path twice" && strings.Contains(err.Error(), "upstreams[2]") {
				t.Errorf("a different host is not a duplicate:\n%s", err)
			}
		})
	}
	ok := "upstreams:\n  - {path: /, url: 'http://a'}\n  - {path: /api/, host: .example.com, url: 'https://b/base', audience: b, strip_prefix: true}\n"
	if _, err := ParseConfig("b.yaml", []byte(ok+providers), lookupIn(nil)); err != nil {
		t.Errorf("valid upstreams refused: %v", err)
	}
}

// echoed is what echoApp answers.
type echoed struct {
	App    string      `json:"app"`
	Path   string      `json:"path"` // escaped, as on the wire
	Query  string      `json:"query"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
}

// echoApp starts an upstream named name that answers with the request it
// received.
func echoApp(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{App: name, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echo fetches path from the broker with the env's browser and returns what
// the upstream received.
func (e *env) echo(host, path string, hdr http.Header) (int, echoed) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if host != "" { // the jar would look for cookies of that host
		req.Host = host
		u, _ := url.Parse(e.broker.URL)
		for _, c := range e.client.Jar.Cookies(u) {
			req.AddCookie(c)
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v echoed
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, v
}

func TestUpstreamsProxy(t *testing.T) {
	root, api, other := echoApp(t, "root"), echoApp(t, "api"), echoApp(t, "other")
	e := newEnv(t, withConfig(func(c *Config) {
		c.Upstreams = []UpstreamConfig{
			{Path: "/", URL: root.URL},
			{Path: "/api/", URL: api.URL + "/base", StripPrefix: true},
			{Host: "other.test", Path: "/", URL: other.URL},
		}
	}))
	if status, _ := e.echo("", "/x", nil); status != http.StatusFound {
		t.Fatalf("before sign-in: status %d, want 302", status)
	}
	e.login("alpha", "alice", "/")
	brokerHost := strings.TrimPrefix(e.broker.URL, "http://")
	forged := http.Header{
		"X-Auth-Request-User": {"evil"}, "X_auth_request_groups": {"admins"},
		"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"},
		"X-Forwarded-Port": {"1"}, "X-Forwarded-Prefix": {"/evil"}, "Forwarded": {"for=6.6.6.6"},
		"Cookie": {"theme=dark"},
	}

	cases := []struct {
		host, path               string
		app, wantPath, wantQuery string
		wantPrefix               string
	}{
		{"", "/x?y=1", "root", "/x", "y=1", ""},
		{"", "/apix", "root", "/apix", "", ""},
		{"", "/api/items?q=a%26b", "api", "/base/items", "q=a%26b", "/api"},
		{"", "/api", "api", "/base/", "", "/api"},
		{"", "/api/a%2Fb", "api", "/base/a%2Fb", "", "/api"},
		{"other.test", "/api/x", "other", "/api/x", "", ""},
	}
	for _, c := range cases {
		status, v := e.echo(c.host, c.path, forged)
		if status != http.StatusOK {
			t.Errorf("%s%s: status %d", c.host, c.path, status)
			continue
		}
		wantHost := brokerHost
		if c.host != "" {
			wantHost = c.host
		}
		if v.App != c.app || v.Path != c.wantPath || v.Query != c.wantQuery || v.Host != wantHost {
			t.Errorf("%s%s reached app %q as host %q path %q query %q; want %q %q %q %q",
				c.host, c.path, v.App, v.Host, v.Path, v.Query, c.app, wantHost, c.wantPath, c.wantQuery)
		}
		h := v.Header
		port := "80"
		if _, p, ok := strings.Cut(wantHost, ":"); ok {
			port = p
		}
		for name, want := range map[string]string{
			HeaderUser: "alpha:alpha-alice", HeaderGroups: "admins,engineering",
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": wantHost, "X-Forwarded-Proto": "http",
			"X-Forwarded-Port": port, "X-Forwarded-Prefix": c.wantPrefix, "Forwarded": "", "Cookie": "theme=dark",
			"X_auth_request_groups": "",
		} {
			if got := strings.Join(h.Values(name), "|"); got != want {
				t.Errorf("%s%s: the app received %s %q, want %q", c.host, c.path, name, got, want)
			}
		}
	}
}

func TestUpstreamNotFound(t *testing.T) {
	api := echoApp(t, "api")
	e := newEnv(t, withConfig(func(c *Config) { c.Upstreams = []UpstreamConfig{{Path: "/api", URL: api.URL}} }))
	// Anonymous: the sign-in comes first, whether or not an upstream exists.
	if status, _ := e.echo("", "/nowhere", nil); status != http.StatusFound {
		t.Errorf("anonymous /nowhere: status %d, want 302", status)
	}
	e.login("alpha", "alice", "/")
	if status, _ := e.echo("", "/nowhere", nil); status != http.StatusNotFound {
		t.Errorf("/nowhere: status %d, want 404", status)
	}
	if status, _ := e.echo("", "/api/x", nil); status != http.StatusOK {
		t.Errorf("/api/x: status %d, want 200", status)
	}
}

// TestWebSocketThroughProxy opens a real WebSocket through the broker to an
// echo server: refused with 401 (never a redirect) without a session, and
// with 403 where the access rules refuse the user. Otherwise the upgrade
// request carries the identity, and neither the client's forged headers nor
// the session cookie; the session is saved before the 101 (with an idle
// timeout, every request renews the cookie); and messages pass.
func TestWebSocketThroughProxy(t *testing.T) {
	ws := httptest.NewServer(wsecho.Handler())
	t.Cleanup(ws.Close)
	app := echoApp(t, "app")
	e := newEnv(t, withConfig(func(c *Config) {
		c.Session.IdleTimeout = time.Hour
		c.Upstreams = []UpstreamConfig{{Path: "/", URL: app.URL}, {Path: "/ws/", URL: ws.URL}}
		c.Routes = []Route{{Path: "/ws/admin/", AccessRule: AccessRule{Groups: GroupCondition{OneOf: []string{"nobody"}}}}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	forged := http.Header{"X-Auth-Request-User": {"evil"}, "X-Auth-Request-Email": {"evil@example.com"}, "Accept": {"text/html"}}

	conn, resp, err := wsecho.Dial(ctx, nil, e.client.Jar, e.broker.URL+"/ws/chat", forged)
	if err == nil {
		conn.Close()
		t.Fatal("a WebSocket without a session was let through")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
		t.Fatalf("a WebSocket without a session: %v, %+v; want 401 without Location", err, resp)
	}

	e.login("alpha", "alice", "/")
	conn, resp, err = wsecho.Dial(ctx, nil, e.client.Jar, e.broker.URL+"/ws/admin/chat", forged)
	if err == nil {
		conn.Close()
		t.Fatal("a WebSocket the access rules refuse was let through")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a WebSocket the access rules refuse: %v; want 403", err)
	}

	conn, resp, err = wsecho.Dial(ctx, nil, e.client.Jar, e.broker.URL+"/ws/chat", forged)
	if err != nil {
		t.Fatalf("a WebSocket with a session: %v", err)
	}
	defer conn.Close()
	var renewed bool
	for _, c := range resp.Cookies() {
		renewed = renewed || c.Name == "oidc_broker" && c.Value != ""
	}
	if !renewed {
		t.Errorf("the 101 did not carry the saved session's cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	hello, err := conn.Hello()
	if err != nil {
		t.Fatal(err)
	}
	if hello.Path != "/ws/chat" {
		t.Errorf("the upstream saw path %q", hello.Path)
	}
	for name, want := range map[string]string{
		HeaderUser: "alpha:alpha-alice", HeaderEmail: "alice@alpha.example", "X-Forwarded-For": "127.0.0.1",
		"X-Forwarded-Proto": "http", "Upgrade": "websocket", "Cookie": "",
	} {
		if got := strings.Join(hello.Header.Values(name), "|"); got != want {
			t.Errorf("the upgrade request carried %s %q, want %q", name, got, want)
		}
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
		if err := conn.WriteText(msg); err != nil {
			t.Fatal(err)
		}
		if got, err := conn.ReadText(); err != nil || got != msg {
			t.Fatalf("echo of a %d-byte message: %d bytes, %v", len(msg), len(got), err)
		}
	}
}
