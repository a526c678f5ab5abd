package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/hostilebody"
)

// TestRequestBodiesBounded posts hostile bodies (hostilebody.Cases) to
// every endpoint of a demo IdP: each endpoint its discovery document names,
// and the login form. Each is refused before a multipart byte is read,
// after at most maxLoginForm bytes of a form, and leaves no temporary file
// (the op's token endpoint calls FormValue, net/http's multipart parser).
// The requests carry a valid client's Basic credentials, so that the token
// endpoint's client check lets them through to the op.
func TestRequestBodiesBounded(t *testing.T) {
	var counter hostilebody.Counter
	var dh deferredHandler
	srv := httptest.NewServer(&dh)
	t.Cleanup(srv.Close)
	h, err := NewIdP(IdPConfig{Issuer: srv.URL, Users: DemoUsers("acme"), Clients: testClients})
	if err != nil {
		t.Fatal(err)
	}
	dh.Handler = counter.Wrap(h)

	resp, err := srv.Client().Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{"/login"}
	for k, v := range doc {
		if u, ok := v.(string); ok && strings.HasSuffix(k, "_endpoint") && strings.HasPrefix(u, srv.URL+"/") {
			targets = append(targets, strings.TrimPrefix(u, srv.URL))
		}
	}
	if len(targets) < 6 {
		t.Fatalf("too few endpoints in discovery: %q", targets)
	}
	basic := httptest.NewRequest(http.MethodGet, "/", nil)
	basic.SetBasicAuth("web", webSecret)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			for _, c := range hostilebody.Cases(maxLoginForm) {
				status, err := hostilebody.Send(addr, http.MethodPost, target, basic.Header, c)
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				read := counter.Read()
				// Any error status: the op answers a chunked form over
				// the bound at /end_session with 500, its own choice.
				if status < 400 {
					t.Errorf("%s: status %d, want a refusal", c.Name, status)
				}
				switch {
				case c.Multipart && read != 0:
					t.Errorf("%s: %d bytes read before the refusal, want none", c.Name, read)
				case read > maxLoginForm+1:
					t.Errorf("%s: %d bytes read, want at most %d", c.Name, read, maxLoginForm)
				}
				if left, _ := os.ReadDir(tmp); len(left) > 0 {
					t.Fatalf("%s: files left in TMPDIR: %v", c.Name, left)
				}
			}
		})
	}
}
