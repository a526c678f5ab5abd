package demo

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// appRequest builds a request with broker-style identity headers, one of them hostile.
func appRequest(accept string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/some/path?q=1", nil)
	r.Header.Set("X-Auth-Request-User", "acme-alice")
	r.Header.Set("X-Auth-Request-Email", "alice@acme.example")
	r.Header.Add("X-Auth-Request-Groups", "admins")
	r.Header.Add("X-Auth-Request-Groups", "engineering")
	r.Header.Set("X-Auth-Request-Preferred-Username", `<script>alert("x")</script>`)
	r.Header.Set("X-Other", "not shown")
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r
}

func TestAppHTML(t *testing.T) {
	w := httptest.NewRecorder()
	NewApp().ServeHTTP(w, appRequest("text/html"))
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Error("header value not escaped")
	}
	if strings.Contains(body, "X-Other") {
		t.Error("shows a header without the X-Auth-Request- prefix")
	}
	// Sorted by name.
	order := []string{"X-Auth-Request-Email", "X-Auth-Request-Groups", "X-Auth-Request-Preferred-Username", "X-Auth-Request-User"}
	last := -1
	for _, name := range order {
		i := strings.Index(body, name)
		if i <= last {
			t.Errorf("%s missing or out of order", name)
		}
		last = i
	}

	golden := filepath.Join("testdata", "app.golden.html")
	if *update {
		if err := os.WriteFile(golden, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if body != string(want) {
		t.Errorf("page differs from %s (run go test -update after checking):\n%s", golden, body)
	}
}

func TestAppJSON(t *testing.T) {
	for _, accept := range []string{"application/json", "text/html;q=0.5, application/json; charset=utf-8"} {
		t.Run(accept, func(t *testing.T) {
			w := httptest.NewRecorder()
			NewApp().ServeHTTP(w, appRequest(accept))
			if w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", w.Header().Get("Content-Type"))
			}
			var got appData
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := appData{Method: "GET", Path: "/some/path", Headers: map[string]string{
				"X-Auth-Request-User":               "acme-alice",
				"X-Auth-Request-Email":              "alice@acme.example",
				"X-Auth-Request-Groups":             "admins, engineering",
				"X-Auth-Request-Preferred-Username": `<script>alert("x")</script>`,
			}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestAppWithoutHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	NewApp().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	body := w.Body.String()
	for _, want := range []string{"POST /", "did not come through the broker",
		`<a href="/oauth2/sign_out">Sign out</a>`, `<a href="/oauth2/userinfo">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
