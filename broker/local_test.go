package broker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/broker/pending"
	"github.com/oidc-broker/oidc-broker/broker/ratelimit"
	"github.com/oidc-broker/oidc-broker/providers"
	"github.com/oidc-broker/oidc-broker/proxyfix"
)

// localProvider is a "local" provider with alice (an admin) and bob, whose
// files are written into a temporary directory. Hashes use bcrypt's lowest
// cost so the tests stay fast.
func localProvider(t *testing.T, basicPaths ...string) providers.Config {
	t.Helper()
	dir := t.TempDir()
	var htpasswd strings.Builder
	for _, u := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd.WriteString(u + ":" + string(h) + "\n")
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return providers.Config{ID: "local", Name: "Local account", Type: providers.TypeLocal,
		HtpasswdFile:   write("users.htpasswd", htpasswd.String()),
		GroupsFile:     write("groups", "admins: alice\nstaff: alice bob\n"),
		BasicAuthPaths: basicPaths}
}

func withLocal(t *testing.T, basicPaths ...string) envOption {
	return withConfig(func(c *Config) { c.Providers = append(c.Providers, localProvider(t, basicPaths...)) })
}

// localForm starts a login at the local provider and opens its form,
// returning the state it carries.
func (e *env) localForm(c *http.Client, rd string) string {
	e.t.Helper()
	resp := e.do(c, http.MethodGet, e.broker.URL+"/oauth2/start/local?rd="+url.QueryEscape(rd), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/oauth2/local/local" {
		e.t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	form := e.do(c, http.MethodGet, e.broker.URL+loc.RequestURI(), nil)
	if form.StatusCode != http.StatusOK {
		e.t.Fatalf("form: %d %s", form.StatusCode, body(form))
	}
	return loc.Query().Get("state")
}

func (e *env) postLocal(c *http.Client, form url.Values) *http.Response {
	e.t.Helper()
	return e.do(c, http.MethodPost, e.broker.URL+"/oauth2/local/local", form)
}

func creds(state, user, password string) url.Values {
	return url.Values{"state": {state}, "username": {user}, "password": {password}}
}

func TestLocalLogin(t *testing.T) {
	e := newEnv(t, withLocal(t))
	if page := body(e.get(e.broker.URL + "/oauth2/sign_in")); !strings.Contains(page, "Local account") {
		t.Fatalf("the sign-in page does not offer the local provider: %s", page)
	}
	state := e.localForm(e.client, "/hello?x=1")
	form := e.get(e.broker.URL + "/oauth2/local/local?state=" + url.QueryEscape(state))
	page := body(form)
	for _, want := range []string{`<label for="username">`, `<label for="password">`, `type="password"`, `autocomplete="current-password"`,
		`name="state" value="` + state + `"`, `method="post" action="/oauth2/local/local"`} {
		if !strings.Contains(page, want) {
			t.Errorf("form lacks %s:\n%s", want, page)
		}
	}
	if form.Header.Get("X-Frame-Options") != "DENY" || form.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(form.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("page headers: %v", form.Header)
	}

	u, _ := url.Parse(e.broker.URL)
	// A session token planted in the browser before the login (fixation).
	e.client.Jar.SetCookies(u, []*http.Cookie{{Name: DefaultCookieName, Value: "planted-by-an-attacker", Path: "/"}})
	before := sessionCookies(e.client, u)
	resp := e.postLocal(e.client, creds(state, "alice", "alice-pw"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/hello?x=1" {
		t.Fatalf("login: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
	}
	// Session fixation: the token is renewed, the old one is not signed in.
	after := sessionCookies(e.client, u)
	if len(before) != 1 || len(after) != 1 || after[0].Value == before[0].Value {
		t.Fatalf("session token not renewed: before %v after %v", before, after)
	}
	old := newBrowser()
	old.Jar.SetCookies(u, before)
	if e.signedIn(old) {
		t.Error("the pre-login session token is signed in")
	}
	_, v := e.appView(e.client, "/hello", nil)
	want := map[string]string{HeaderUser: "local:alice", HeaderProvider: "local", HeaderPreferredUsername: "alice", HeaderGroups: "admins,staff"}
	for k, w := range want {
		if got := v.Headers[k]; got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if e, ok := v.Headers[HeaderEmail]; ok {
		t.Errorf("email relayed for a local user: %q", e)
	}
	// The state was spent.
	alice := e.client
	e.client = newBrowser()
	e.refused(e.postLocal(alice, creds(state, "alice", "alice-pw")), http.StatusBadRequest, "unknown or replayed state")
}

func TestLocalWrongPasswordThenRetry(t *testing.T) {
	e := newEnv(t, withLocal(t))
	state := e.localForm(e.client, "/after")
	wrong := e.postLocal(e.client, creds(state, "alice", "nope"))
	unknown := e.postLocal(e.client, creds(state, "mallory", "alice-pw"))
	for _, resp := range []*http.Response{wrong, unknown} {
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body(resp), "The username or password is incorrect.") {
			t.Fatalf("refusal: %d %s", resp.StatusCode, body(resp))
		}
	}
	// The same page either way, but for the username typed in.
	if strings.ReplaceAll(body(wrong), `value="alice"`, "") != strings.ReplaceAll(body(unknown), `value="mallory"`, "") {
		t.Errorf("an unknown user gets another page:\n%s\n---\n%s", body(wrong), body(unknown))
	}
	if e.signedIn(e.client) {
		t.Fatal("signed in after a wrong password")
	}
	if !strings.Contains(e.logs.String(), "local login failed") {
		t.Error("failure not logged")
	}
	// The state survives a wrong password: the user can try again.
	resp := e.postLocal(e.client, creds(state, "alice", "alice-pw"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after" || !e.signedIn(e.client) {
		t.Fatalf("retry: %d %s", resp.StatusCode, body(resp))
	}
}

func TestLocalLoginRefusals(t *testing.T) {
	t.Run("no state", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		e.localForm(e.client, "/")
		e.refused(e.postLocal(e.client, url.Values{"username": {"alice"}, "password": {"alice-pw"}}), http.StatusBadRequest, "missing state")
	})
	t.Run("state in the query instead of the form", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		state := e.localForm(e.client, "/")
		resp := e.do(e.client, http.MethodPost, e.broker.URL+"/oauth2/local/local?state="+url.QueryEscape(state),
			url.Values{"username": {"alice"}, "password": {"alice-pw"}})
		e.refused(resp, http.StatusBadRequest, "missing state")
	})
	t.Run("state of another browser (CSRF)", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		e.localForm(e.client, "/")
		foreign := e.localForm(newBrowser(), "/")
		e.refused(e.postLocal(e.client, creds(foreign, "alice", "alice-pw")), http.StatusBadRequest, "unknown or replayed state")
		// A cross-site post carries no session at all.
		e.refused(e.postLocal(newBrowser(), creds(foreign, "alice", "alice-pw")), http.StatusBadRequest, "unknown or replayed state")
	})
	t.Run("state of another provider", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		resp := e.get(e.broker.URL + "/oauth2/start/alpha")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		e.refused(e.postLocal(e.client, creds(loc.Query().Get("state"), "alice", "alice-pw")), http.StatusBadRequest, "state belongs to provider alpha")
		e.refused(e.get(e.broker.URL+"/oauth2/local/local?state="+url.QueryEscape(loc.Query().Get("state"))), http.StatusBadRequest, "state belongs to provider alpha")
	})
	t.Run("expired state", func(t *testing.T) {
		var offset atomic.Int64
		e := newEnv(t, withLocal(t), withClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
		state := e.localForm(e.client, "/")
		offset.Store(int64(pending.TTL + time.Minute))
		e.refused(e.postLocal(e.client, creds(state, "alice", "alice-pw")), http.StatusBadRequest, "state expired")
	})
	t.Run("not a password provider", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		e.refused(e.get(e.broker.URL+"/oauth2/local/alpha?state=x"), http.StatusNotFound, "not a password provider")
	})
	t.Run("the callback of a local provider", func(t *testing.T) {
		e := newEnv(t, withLocal(t))
		state := e.localForm(e.client, "/")
		e.refused(e.get(e.broker.URL+"/oauth2/callback/local?state="+url.QueryEscape(state)), http.StatusUnauthorized, "verification failed")
	})
}

func TestLocalRateLimits(t *testing.T) {
	// The clock stands still but for offset: the Retry-After values below
	// are exact, and a slow run (bcrypt under -race on a loaded machine)
	// must not take a second off them.
	var offset atomic.Int64
	base := time.Now()
	clock := withClock(func() time.Time { return base.Add(time.Duration(offset.Load())) })
	fromAddr := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	trustXFor := withConfig(func(c *Config) { c.TrustedProxies = proxyfix.Config{XFor: 1} })

	t.Run("an attacker's address does not lock the user out", func(t *testing.T) {
		e := newEnv(t, withLocal(t), clock, trustXFor)
		offset.Store(0)
		state := e.localForm(e.client, "/")
		attacker := fromAddr("192.0.2.66")
		for i := range 50 {
			want := http.StatusUnauthorized
			if i >= ratelimit.PairFailures {
				want = http.StatusTooManyRequests
			}
			if resp := e.postLocalFrom(attacker, creds(state, "alice", "guess")); resp.StatusCode != want {
				t.Fatalf("attempt %d from the attacker's address: %d, want %d", i+1, resp.StatusCode, want)
			}
		}
		// The attacker's address is locked out of alice, even with the
		// right password...
		resp := e.postLocalFrom(attacker, creds(state, "alice", "alice-pw"))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "180" ||
			!strings.Contains(body(resp), "try again in 3 min.") {
			t.Fatalf("the attacker's address: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body(resp))
		}
		if e.signedIn(e.client) {
			t.Fatal("signed in although limited")
		}
		// ...and alice, from her own address, signs in at once.
		if resp := e.postLocalFrom(fromAddr("198.51.100.7"), creds(state, "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("alice from another address: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body(resp))
		}
		// The attacker's address gets an attempt back after an interval.
		offset.Store(int64(ratelimit.FailureSpan / ratelimit.PairFailures))
		if resp := e.postLocalFrom(attacker, creds(e.localForm(e.client, "/"), "alice", "guess")); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the attacker's address after the wait: %d", resp.StatusCode)
		}
	})
	t.Run("many addresses slow the user down, boundedly", func(t *testing.T) {
		e := newEnv(t, withLocal(t), clock, trustXFor)
		offset.Store(0)
		state := e.localForm(e.client, "/")
		botnet := func(from, n int) {
			t.Helper()
			for i := from; i < from+n; i++ {
				resp := e.postLocalFrom(fromAddr("203.0.113."+strconv.Itoa(i)), creds(state, "alice", "guess"))
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("attempt from address %d: %d", i, resp.StatusCode)
				}
			}
		}
		botnet(1, ratelimit.SpreadAddrs)
		// Alice, from a fresh address, is slowed down, not locked out...
		alice := fromAddr("198.51.100.7")
		resp := e.postLocalFrom(alice, creds(state, "alice", "alice-pw"))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" ||
			!strings.Contains(body(resp), "try again in 1 min.") {
			t.Fatalf("alice during the attack: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body(resp))
		}
		// ...while the attack goes on, from the same addresses and new ones
		// (which wait as she does)...
		botnet(1, 3*ratelimit.SpreadAddrs)
		// ...and signs in once her wait is over.
		offset.Store(int64(ratelimit.SlowDelay))
		botnet(1, 3*ratelimit.SpreadAddrs)
		if resp := e.postLocalFrom(alice, creds(state, "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("alice after her wait: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body(resp))
		}
		// Another user is not slowed down.
		state = e.localForm(e.client, "/")
		if resp := e.postLocalFrom(fromAddr("198.51.100.8"), creds(state, "bob", "bob-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("bob: %d", resp.StatusCode)
		}
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, withLocal(t), clock, trustXFor)
		offset.Store(0)
		state := e.localForm(e.client, "/")
		// Trying many usernames from one address (an IPv6 /64 counts as one).
		for i := range ratelimit.AddrFailures {
			resp := e.postLocalFrom(fromAddr("2001:db8::"+strconv.Itoa(i+1)), creds(state, "user"+strconv.Itoa(i), "guess"))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i+1, resp.StatusCode)
			}
		}
		resp := e.postLocalFrom(fromAddr("2001:db8::ffff"), creds(state, "alice", "alice-pw"))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "45" {
			t.Fatalf("limited: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// Another address is not affected.
		if resp := e.postLocalFrom(fromAddr("2001:db8:1::1"), creds(state, "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("another address: %d", resp.StatusCode)
		}
	})
	t.Run("success resets the user", func(t *testing.T) {
		e := newEnv(t, withLocal(t), clock)
		offset.Store(0)
		for range ratelimit.PairFailures - 1 {
			e.postLocal(e.client, creds(e.localForm(e.client, "/"), "alice", "guess"))
		}
		if resp := e.postLocal(e.client, creds(e.localForm(e.client, "/"), "alice", "alice-pw")); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		state := e.localForm(e.client, "/")
		for i := range ratelimit.PairFailures {
			if resp := e.postLocal(e.client, creds(state, "alice", "guess")); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attempt %d after a success: %d", i+1, resp.StatusCode)
			}
		}
	})
}

func (e *env) postLocalFrom(hdr http.Header, form url.Values) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.broker.URL+"/oauth2/local/local", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, withLocal(t, "/api/", "/metrics"))
	basic := func(user, pw string) http.Header {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pw)
		return http.Header{"Authorization": r.Header["Authorization"]}
	}
	api := newBrowser()
	for _, path := range []string{"/api/items", "/metrics", "/api/"} {
		status, v := e.appView(api, path, basic("bob", "bob-pw"))
		if status != http.StatusOK || v.Headers[HeaderUser] != "local:bob" || v.Headers[HeaderGroups] != "staff" {
			t.Fatalf("%s: %d %v", path, status, v.Headers)
		}
		if a, ok := v.Headers["Authorization"]; ok {
			t.Errorf("%s: the password reached the app: %q", path, a)
		}
	}
	u, _ := url.Parse(e.broker.URL)
	if c := api.Jar.Cookies(u); len(c) != 0 {
		t.Errorf("Basic created a session: %v", c)
	}
	// Not a Basic path: the credentials are ignored.
	for _, path := range []string{"/other", "/metrics/x", "/apiary"} {
		if status, _ := e.appView(api, path, basic("bob", "bob-pw")); status != http.StatusUnauthorized {
			t.Errorf("%s: %d", path, status)
		}
	}
	resp := e.do(newBrowser(), http.MethodGet, e.broker.URL+"/other", nil)
	if resp.StatusCode != http.StatusFound {
		t.Errorf("browser on a non-Basic path: %d", resp.StatusCode)
	}
	// Wrong credentials on a Basic path: 401 with a Basic challenge, even
	// with a valid session (explicit credentials win).
	e.login("alpha", "alice", "/")
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/api/items", nil)
	req.SetBasicAuth("bob", "wrong")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("wrong password: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Without credentials a Basic path still takes the session.
	if status, v := e.appView(e.client, "/api/items", nil); status != http.StatusOK || v.Headers[HeaderUser] != "alpha:alpha-alice" {
		t.Errorf("session on a Basic path: %d %v", status, v.Headers)
	}
	// The form's rate limits apply: bob has used one failure.
	for range ratelimit.PairFailures - 1 {
		e.appView(api, "/api/items", basic("bob", "wrong"))
	}
	req, _ = http.NewRequest(http.MethodGet, e.broker.URL+"/api/items", nil)
	req.SetBasicAuth("bob", "bob-pw")
	resp, err = api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("limited: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestBasicAuthLockoutPerAddress: failed Basic credentials from one address
// lock that address out of the user, not the user out of the API.
func TestBasicAuthLockoutPerAddress(t *testing.T) {
	e := newEnv(t, withLocal(t, "/api/"), withConfig(func(c *Config) { c.TrustedProxies = proxyfix.Config{XFor: 1} }))
	basicFrom := func(addr, user, pw string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/api/items", nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Forwarded-For", addr)
		req.SetBasicAuth(user, pw)
		resp, err := newBrowser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 50 {
		want := http.StatusUnauthorized
		if i >= ratelimit.PairFailures {
			want = http.StatusTooManyRequests
		}
		if resp := basicFrom("192.0.2.66", "bob", "wrong"); resp.StatusCode != want {
			t.Fatalf("attempt %d from the attacker's address: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if resp := basicFrom("192.0.2.66", "bob", "bob-pw"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "180" {
		t.Errorf("the attacker's address: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := basicFrom("198.51.100.7", "bob", "bob-pw"); resp.StatusCode != http.StatusOK {
		t.Errorf("bob from his own address: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestBasicAuthOverPlainHTTP(t *testing.T) {
	e := newEnv(t, withLocal(t, "/api/"), withConfig(func(c *Config) { c.PublicURL = "http://auth.example.com" }))
	req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/api/items", nil)
	req.Host = "auth.example.com"
	req.SetBasicAuth("bob", "bob-pw")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Basic over http: %d", resp.StatusCode)
	}
}

func TestLocalConfig(t *testing.T) {
	lp := localProvider(t, "/api/")
	other := lp
	other.ID = "local2"
	cfg := Config{PublicURL: "http://auth.example.com", Providers: []providers.Config{lp, other}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `providers[1].basic_auth_paths[0]: "/api/" is already a Basic path of providers[0]`) {
		t.Errorf("shared Basic path: %v", err)
	}
	if w := strings.Join(cfg.Warnings(), "\n"); !strings.Contains(w, "basic_auth_paths") {
		t.Errorf("warnings: %s", w)
	}
	// A bad htpasswd entry is reported with the line of the setting and
	// the line in the file.
	bad := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(bad, []byte("alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := "providers:\n  - id: local\n    type: local\n    htpasswd_file: " + bad + "\n"
	_, err = ParseConfig("broker.yaml", []byte(yaml), lookupIn(nil))
	if err == nil || !strings.Contains(err.Error(), `line 4: providers[0].htpasswd_file: "`+bad+`" line 1: user "alice": has an MD5 (apr1) hash`) {
		t.Errorf("ParseConfig: %v", err)
	}
}

func TestBasicAuthOnForwardAuth(t *testing.T) {
	e := newEnv(t, withLocal(t, "/api/"), withConfig(func(c *Config) { c.TrustedProxies = proxyfix.Config{From: []string{"127.0.0.1", "::1"}} }))
	auth := func(uri, user, pw string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.broker.URL+"/oauth2/auth", nil)
		req.Header.Set("X-Original-URI", uri)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := newBrowser().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := auth("/api/items?x=1", "bob", "bob-pw"); resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderUser) != "local:bob" {
		t.Errorf("Basic on a Basic path: %d %q", resp.StatusCode, resp.Header.Get(HeaderUser))
	}
	// An escaped path is decoded before matching: this is /admin.
	if resp := auth("/api/%2e%2e/admin", "bob", "bob-pw"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(HeaderUser) != "" {
		t.Errorf("Basic on an escaped other path: %d %q", resp.StatusCode, resp.Header.Get(HeaderUser))
	}
	if resp := auth("/other", "bob", "bob-pw"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(HeaderUser) != "" {
		t.Errorf("Basic on another path: %d", resp.StatusCode)
	}
	if resp := auth("/api/items", "bob", "wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("wrong password: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A rate limit is a 401 with Retry-After: nginx's auth_request knows
	// no 429.
	for range ratelimit.PairFailures {
		auth("/api/items", "bob", "wrong")
	}
	if resp := auth("/api/items", "bob", "bob-pw"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Retry-After") == "" {
		t.Errorf("limited: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
