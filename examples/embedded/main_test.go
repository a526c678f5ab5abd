package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker"
)

// The example app, with its own broker.yaml, signs alice and bob in and
// lets only alice into /admin/.
func TestEmbeddedApp(t *testing.T) {
	cfg, err := broker.LoadConfig("broker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublicURL = "" // the test server's own address
	srv, err := broker.New(cfg, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(newApp(srv))
	defer ts.Close()

	anon := browser()
	if code, _ := get(t, anon, ts.URL+"/"); code != http.StatusOK {
		t.Errorf("home (public): %d", code)
	}
	if code, _ := get(t, anon, ts.URL+"/admin/"); code != http.StatusFound {
		t.Errorf("admin, not signed in: %d, want 302 to sign in", code)
	}

	alice, bob := signIn(t, ts.URL, "alice"), signIn(t, ts.URL, "bob")
	if code, body := get(t, alice, ts.URL+"/admin/"); code != http.StatusOK || !strings.Contains(body, "Signed in as <strong>local:alice</strong>, groups: admins staff ") {
		t.Errorf("alice on /admin/: %d\n%s", code, body)
	}
	if code, _ := get(t, bob, ts.URL+"/admin/"); code != http.StatusForbidden {
		t.Errorf("bob on /admin/: %d, want 403", code)
	}
	if code, body := get(t, bob, ts.URL+"/profile"); code != http.StatusOK || !strings.Contains(body, "local:bob") {
		t.Errorf("bob on /profile: %d\n%s", code, body)
	}
	if _, body := get(t, bob, ts.URL+"/"); !strings.Contains(body, "local:bob") {
		t.Error("the public home page does not know that bob is signed in")
	}
}

func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var stateField = regexp.MustCompile(`name="state" value="([^"]+)"`)

// signIn signs in as user (password "demo") through the local login form.
func signIn(t *testing.T, base, user string) *http.Client {
	t.Helper()
	c := browser()
	resp, err := c.Get(base + "/oauth2/start/local?rd=%2Fprofile")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	_, form := get(t, c, loc.String())
	m := stateField.FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("no state in the login form:\n%s", form)
	}
	resp, err = c.PostForm(base+"/oauth2/local/local", url.Values{"state": {m[1]}, "username": {user}, "password": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("sign in as %s: %d, Location %q", user, resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}
