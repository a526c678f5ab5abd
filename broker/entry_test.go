package broker

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/access"
)

// badPaths decode to NUL, another control character, DEL or invalid UTF-8
// (a stray continuation byte, a truncated sequence, an overlong form, a
// surrogate), or do not decode at all.
var badPaths = []string{"/public/%00", "/public/a%01b", "/public/%09", "/public/%1F", "/public/%7F", "/public/%7f",
	"/public/%FF", "/public/%80", "/public/caf%C3", "/public/%C0%AF", "/public/%ED%A0%80"}

// goodPaths are plain, or decode to printable UTF-8.
var goodPaths = []string{"/public/x", "/public/caf%C3%A9", "/public/%E2%82%AC%20x", "/public/a%2Fb", "/public/%25"}

// TestPathWithControlCharactersRefused: a path whose decoded form holds a
// control character or invalid UTF-8 gets 400 before any access rule or
// handler sees it, in reverse-proxy mode (public and protected routes, and
// the broker's own), behind Protect in an embedding program, and on
// forward-auth for the URI a trusted proxy reports. A query may hold
// anything; an untrusted peer's URI is not read, so it is not judged
// either.
func TestPathWithControlCharactersRefused(t *testing.T) {
	e := newEnv(t, withRules("127.0.0.1"))
	for _, p := range badPaths {
		for _, path := range []string{p, strings.Replace(p, "/public/", "/admin/", 1), strings.Replace(p, "/public/", "/oauth2/sign_in/", 1)} {
			if resp := e.request(nil, http.MethodGet, path, nil); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 400", path, resp.StatusCode)
			}
		}
		if resp := e.request(nil, http.MethodGet, "/oauth2/auth", nginx(p, "GET")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forward-auth, X-Original-URI %s: status %d, want 400", p, resp.StatusCode)
		}
		if resp := e.request(nil, http.MethodGet, "/oauth2/auth", traefik(e, p+"?q=1", "GET")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("forward-auth, X-Forwarded-Uri %s?q=1: status %d, want 400", p, resp.StatusCode)
		}
	}
	if resp := e.request(nil, http.MethodGet, "/oauth2/auth", nginx("/public/a%zz", "GET")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forward-auth, X-Original-URI with a malformed escape: status %d, want 400", resp.StatusCode)
	}
	for _, p := range goodPaths {
		if resp := e.request(nil, http.MethodGet, p+"?q=%00%FF", nil); resp.StatusCode == http.StatusBadRequest {
			t.Errorf("GET %s?q=%%00%%FF: status 400", p)
		}
		if resp := e.request(nil, http.MethodGet, "/oauth2/auth", nginx(p+"?q=%00", "GET")); resp.StatusCode != http.StatusAccepted {
			t.Errorf("forward-auth, X-Original-URI %s?q=%%00: status %d, want 202", p, resp.StatusCode)
		}
	}
	if got := rawStatus(t, e.broker.URL, "/public/\xff"); got != http.StatusBadRequest {
		t.Errorf("a raw non-UTF-8 byte in the path: status %d, want 400", got)
	}

	untrusted := newEnv(t, withRules())
	if resp := untrusted.request(nil, http.MethodGet, "/oauth2/auth", nginx("/public/%00", "GET")); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forward-auth from an untrusted peer, X-Original-URI /public/%%00: status %d, want 401 (the header is not read)", resp.StatusCode)
	}

	embedded := newEnv(t, withConfig(embeddedRules), withMount(embeddedMux))
	for _, p := range []string{"/open/%00", "/hello%0A", "/x%FF"} {
		if resp := embedded.request(nil, http.MethodGet, p, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("embedded, GET %s: status %d, want 400", p, resp.StatusCode)
		}
	}
	if resp := embedded.request(nil, http.MethodGet, "/open/caf%C3%A9", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("embedded, GET /open/caf%%C3%%A9: status %d, want 200", resp.StatusCode)
	}
}

// rawStatus sends "GET target HTTP/1.1" to the server at base as written
// (a client library would escape it) and returns the answer's status.
func rawStatus(t *testing.T, base, target string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, strings.TrimPrefix(base, "http://")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FuzzEscapedPathClean: judging an escaped path on the fly agrees with
// decoding it first.
func FuzzEscapedPathClean(f *testing.F) {
	for _, p := range append(append([]string{"", "/", "%", "%4", "%zz", "/caf%C3%A9", "/\xe2\x82", "/%E2%82", "/%E2%82%AC", "/%EF%BF%BD"}, badPaths...), goodPaths...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		d, err := url.PathUnescape(p)
		want := err == nil && access.Readable(d)
		if got := access.ReadableEscaped(p); got != want {
			t.Errorf("access.ReadableEscaped(%q) = %v, want %v", p, got, want)
		}
	})
}

// TestPathCheckAllocatesNothing: the check runs on every request.
func TestPathCheckAllocatesNothing(t *testing.T) {
	for _, p := range append(badPaths, goodPaths...) {
		if n := testing.AllocsPerRun(100, func() { access.ReadableEscaped(p) }); n != 0 {
			t.Errorf("access.ReadableEscaped(%q): %v allocations", p, n)
		}
	}
}
