package formbody

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		chunked                 bool
		want                    url.Values
		status                  int // of the error; 0: none
	}{
		{name: "form", contentType: ContentType, body: "a=1&b=2", want: url.Values{"a": {"1"}, "b": {"2"}}},
		{name: "form with a charset", contentType: ContentType + "; charset=UTF-8", body: "a=%C3%A9", want: url.Values{"a": {"é"}}},
		{name: "exactly the bound", contentType: ContentType, body: "a=" + strings.Repeat("x", 14), want: url.Values{"a": {strings.Repeat("x", 14)}}},
		{name: "no body", contentType: "", body: "", want: url.Values{}},
		{name: "over the bound, declared", contentType: ContentType, body: "a=" + strings.Repeat("x", 15), status: http.StatusRequestEntityTooLarge},
		{name: "over the bound, chunked", contentType: ContentType, body: "a=" + strings.Repeat("x", 15), chunked: true, status: http.StatusRequestEntityTooLarge},
		{name: "multipart", contentType: "multipart/form-data; boundary=b", body: "--b\r\n\r\n--b--\r\n", status: http.StatusUnsupportedMediaType},
		{name: "JSON", contentType: "application/json", body: `{"a":1}`, status: http.StatusUnsupportedMediaType},
		{name: "no type", contentType: "", body: "a=1", status: http.StatusUnsupportedMediaType},
		{name: "malformed type", contentType: "application/x-www-form-urlencoded; =", body: "a=1", status: http.StatusUnsupportedMediaType},
		{name: "bad escape", contentType: ContentType, body: "a=%zz", status: http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/?q=query", strings.NewReader(c.body))
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			if c.chunked {
				r.ContentLength = -1
			}
			got, err := Read(httptest.NewRecorder(), r, 16)
			if c.status != 0 {
				if err == nil || Status(err) != c.status {
					t.Fatalf("err %v (status %d), want status %d", err, Status(err), c.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Encode() != c.want.Encode() || got.Has("q") {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if r.Form != nil || r.PostForm != nil || r.MultipartForm != nil {
				t.Error("Read parsed the request's own form fields")
			}
		})
	}
}

// TestReadRefusesBeforeReading: a body of another type, or declared over
// the bound, is not read at all.
func TestReadRefusesBeforeReading(t *testing.T) {
	for name, contentType := range map[string]string{"multipart": "multipart/form-data; boundary=b", "form": ContentType} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", failingReader{})
			r.Header.Set("Content-Type", contentType)
			r.ContentLength = 1 << 30
			if _, err := Read(httptest.NewRecorder(), r, 16); errors.Is(err, errRead) || err == nil {
				t.Fatalf("err %v: the body was read, or accepted", err)
			}
		})
	}
}

var errRead = errors.New("read")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errRead }

func TestLimit(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(r.PostForm.Get("a")))
	})
	h := Limit(16)(next)
	cases := []struct {
		name, method, contentType, body string
		chunked                         bool
		status                          int
	}{
		{"GET without a body", http.MethodGet, "", "", false, http.StatusOK},
		{"form", http.MethodPost, ContentType, "a=1", false, http.StatusOK},
		{"multipart", http.MethodPost, "multipart/form-data; boundary=b", "--b--\r\n", false, http.StatusUnsupportedMediaType},
		{"declared over the bound", http.MethodPost, ContentType, strings.Repeat("a", 17), false, http.StatusRequestEntityTooLarge},
		{"chunked over the bound: next's parser stops at it", http.MethodPost, ContentType, strings.Repeat("a", 17), true, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/", strings.NewReader(c.body))
			if c.body == "" {
				r = httptest.NewRequest(c.method, "/", nil)
			}
			if c.contentType != "" {
				r.Header.Set("Content-Type", c.contentType)
			}
			if c.chunked {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Errorf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
		})
	}
}
