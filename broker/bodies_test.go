package broker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/broker/backchannel"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostilebody"
)

// bodyEndpoints are the routes that read a request body, each with a path
// that reaches the read and its bound. A new one goes here:
// TestEveryBodyReadingRouteIsListed fails while it is missing.
var bodyEndpoints = []struct {
	pattern, path string
	max           int64
}{
	{"POST /oauth2/sign_out", "/oauth2/sign_out", maxSignOutForm},
	{"POST /oauth2/local/{provider}", "/oauth2/local/local", maxLocalForm},
	{"POST /oauth2/backchannel_logout/{provider}", "/oauth2/backchannel_logout/alpha", backchannel.MaxRequest},
}

// bodyStreamers are the routes that pass a body on instead of reading it,
// and why that is bounded otherwise.
var bodyStreamers = map[string]string{
	"/":                          "the reverse proxy streams a signed-in user's body to the upstream, within server.read_timeout",
	"GET /.well-known/jwks.json": "without the assertion, the path is the upstream's (the reverse proxy)",
}

// TestRequestBodiesBounded posts what an attacker would to every endpoint
// that reads a body: a multipart upload with a 40 MB file part, and an
// urlencoded form over the endpoint's bound, each with a declared length
// and chunked. Each is refused; a multipart body is refused before a byte
// of it is read, a form after at most its bound; and no temporary file is
// left behind (net/http's multipart parser spills file parts over 32 MB to
// os.TempDir, and the server removes them only for the request it handed
// to the handler, not for the copy the broker's entry makes).
func TestRequestBodiesBounded(t *testing.T) {
	e := newEnv(t, withLocal(t))
	var counter hostilebody.Counter
	e.broker.Config.Handler.(*deferred).Handler = counter.Wrap(e.server.Handler())
	addr := strings.TrimPrefix(e.broker.URL, "http://")

	for _, ep := range bodyEndpoints {
		t.Run(ep.pattern, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			// Control: a small form is read, and counted.
			form := url.Values{"csrf": {"x"}, "state": {"x"}, "logout_token": {"x"}}
			small := form.Encode()
			e.do(newBrowser(), http.MethodPost, e.broker.URL+ep.path, form)
			if got := counter.Read(); got != int64(len(small)) {
				t.Fatalf("a form of %d bytes: the handler read %d bytes (is the body counted?)", len(small), got)
			}
			for _, c := range hostilebody.Cases(ep.max) {
				status, err := hostilebody.Send(addr, http.MethodPost, ep.path, nil, c)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				read := counter.Read()
				if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge && status != http.StatusUnsupportedMediaType {
					t.Errorf("%s: status %d, want a refusal (400, 413 or 415)", c.Name, status)
				}
				switch {
				case c.Multipart && read != 0:
					t.Errorf("%s: %d bytes read before the refusal, want none", c.Name, read)
				case read > ep.max+1:
					t.Errorf("%s: %d bytes read, want at most the bound %d", c.Name, read, ep.max)
				}
				if left, _ := os.ReadDir(tmp); len(left) > 0 {
					t.Fatalf("%s: files left in TMPDIR: %v", c.Name, left)
				}
			}
		})
	}
}

// TestEveryBodyReadingRouteIsListed sends a small form to every route the
// package registers (found in its source), with every provider for a
// {provider}, signed out and signed in: a route whose handler reads any of
// it must be in bodyEndpoints (or bodyStreamers), so that
// TestRequestBodiesBounded covers it.
func TestEveryBodyReadingRouteIsListed(t *testing.T) {
	patterns := registeredPatterns(t)
	listed := map[string]bool{}
	for _, ep := range bodyEndpoints {
		listed[ep.pattern] = true
		if !slices.Contains(patterns, ep.pattern) {
			t.Errorf("bodyEndpoints lists %q, which no longer is a route", ep.pattern)
		}
	}
	for p := range bodyStreamers {
		listed[p] = true
	}
	e := newEnv(t, withLocal(t))
	var counter hostilebody.Counter
	e.broker.Config.Handler.(*deferred).Handler = counter.Wrap(e.server.Handler())
	signedIn := newBrowser()
	e.client = signedIn
	if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", resp.StatusCode, body(resp))
	}
	form := url.Values{"csrf": {"x"}, "state": {"x"}, "logout_token": {"x"}, "rd": {"/"}}
	for _, pattern := range patterns {
		method, paths := probes(pattern, []string{"alpha", "beta", "local"})
		for _, path := range paths {
			for who, c := range map[string]*http.Client{"signed out": newBrowser(), "signed in": signedIn} {
				e.do(c, method, e.broker.URL+path, form)
				if n := counter.Read(); n > 0 && !listed[pattern] {
					t.Errorf("%s %s (%s, route %q) read %d bytes of the body, but is not in bodyEndpoints", method, path, who, pattern, n)
				}
			}
			if !e.signedIn(signedIn) { // a route signed the browser out: sign in again
				if resp := e.login("alpha", "alice", "/"); resp.StatusCode != http.StatusFound {
					t.Fatalf("login again: %d", resp.StatusCode)
				}
			}
		}
	}
}

// registeredPatterns is every pattern passed to a Handle or HandleFunc call
// in the package's source: the routes of the broker's mux.
func registeredPatterns(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if _, concat := call.Args[0].(*ast.BinaryExpr); concat {
				t.Errorf("%s: a route whose pattern is not a literal: probe it by hand", fset.Position(call.Pos()))
			}
			if !ok || lit.Kind != token.STRING {
				return true // slog's Handle(ctx, record), say
			}
			p, _ := strconv.Unquote(lit.Value)
			patterns = append(patterns, p)
			return true
		})
	}
	if len(patterns) < 10 {
		t.Fatalf("found only %d routes in the source: %q", len(patterns), patterns)
	}
	return patterns
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// probes is the method and the concrete paths of a route pattern: each
// {provider} becomes each of providers, other wildcards "x"; a pattern
// without a method is probed with POST.
func probes(pattern string, providers []string) (string, []string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodPost, pattern
	}
	if !strings.Contains(path, "{provider}") {
		return method, []string{wildcard.ReplaceAllString(path, "x")}
	}
	var paths []string
	for _, p := range providers {
		paths = append(paths, wildcard.ReplaceAllString(strings.ReplaceAll(path, "{provider}", p), "x"))
	}
	return method, paths
}
