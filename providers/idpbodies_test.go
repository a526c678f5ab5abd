package providers

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBodyGuard: what of an IdP's answer reaches zitadel and x/oauth2
// (which quote bodies they cannot use in their errors).
func TestBodyGuard(t *testing.T) {
	long := strings.Repeat("d", 300)
	cases := []struct {
		name, contentType, body string
		status                  int
		want                    string // the body passed on
	}{
		{"JSON document", "application/json", `{"issuer":"x"}`, 200, `{"issuer":"x"}`},
		{"JSON whatever the type says", "text/html", `{"keys":[]}`, 200, `{"keys":[]}`},
		{"empty", "text/html", "", 204, ""},
		{"signed userinfo", "application/jwt", "eyJh.eyJz.c2ln\n", 200, "eyJh.eyJz.c2ln\n"},
		{"not a JWT said to be one", "application/jwt", "<html>x</html>", 200, "(IdP response body not shown: application/jwt, 14 bytes)"},
		{"form token response", "application/x-www-form-urlencoded; charset=utf-8", "access_token=a&token_type=bearer", 200, "access_token=a&token_type=bearer"},
		{"form without a token", "application/x-www-form-urlencoded", "<html>", 200, "(IdP response body not shown: application/x-www-form-urlencoded, 6 bytes)"},
		{"HTML page", "text/html; charset=utf-8", "<html>secret</html>", 200, "(IdP response body not shown: text/html, 19 bytes)"},
		{"HTML error page", "text/html", "<html>secret</html>", 502, "(IdP response body not shown: text/html, 19 bytes)"},
		{"no media type", "", "oops", 500, "(IdP response body not shown: no valid media type, 4 bytes)"},
		{"OAuth error", "application/json", `{"error":"invalid_grant","error_description":"expired","extra":"secret"}`, 400,
			`{"error":"invalid_grant","error_description":"expired"}`},
		{"OAuth error, long description", "application/json", `{"error":"invalid_client","error_description":"` + long + `"}`, 401,
			`{"error":"invalid_client","error_description":"` + long[:maxErrorDescription] + `..."}`},
		{"OAuth error, description outside the standard's characters", "application/json", `{"error":"server_error","error_description":"<p>\"x\"\n</p>"}`, 500,
			`{"error":"server_error"}`},
		{"error code outside the standard's characters", "application/json", `{"error":"bad\u00e9"}`, 400, "(IdP response body not shown: application/json, 21 bytes)"},
		{"error that is an object", "application/json", `{"error":{"message":"secret"}}`, 400, "(IdP response body not shown: application/json, 30 bytes)"},
		{"over the bound", "application/json", `"` + strings.Repeat("x", maxIdPBody) + `"`, 200, "(IdP response body not shown: application/json, more than 1048576 bytes)"},
	}
	// Each body as a response of unknown length, and as one that says
	// its length (read in one allocation), or a wrong one.
	lengths := map[string]func(body string) int64{
		"unknown length": func(string) int64 { return -1 },
		"length":         func(body string) int64 { return int64(len(body)) },
		"length short":   func(body string) int64 { return int64(len(body) / 2) },
	}
	for _, c := range cases {
		for ln, length := range lengths {
			t.Run(c.name+", "+ln, func(t *testing.T) {
				g := guardBodies(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.contentType}},
						Body: io.NopCloser(strings.NewReader(c.body)), ContentLength: length(c.body), Request: r}, nil
				}))
				req, _ := http.NewRequest(http.MethodGet, "http://idp.test/x", nil)
				resp, err := g.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != c.want || resp.StatusCode != c.status || resp.ContentLength != int64(len(b)) {
					t.Errorf("%d %q (length %d), want %d %q", resp.StatusCode, b, resp.ContentLength, c.status, c.want)
				}
			})
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestIdPBodyStatedLengthNotTrusted: the length an IdP states is not
// allocated before the body comes: a response that says 1 MiB and sends a
// few bytes costs a buffer of at most idpBodyPrealloc (review finding: an
// IdP that states the most and sends nothing pinned 1 MiB per call for
// the client's time-out). A body that does come is read whole.
func TestIdPBodyStatedLengthNotTrusted(t *testing.T) {
	for _, c := range []struct {
		stated int64
		body   string
	}{
		{maxIdPBody, `{"a":1}`},
		{maxIdPBody, strings.Repeat("x", 200<<10)},
		{7, `{"a":1}`},
	} {
		resp := &http.Response{ContentLength: c.stated, Body: io.NopCloser(strings.NewReader(c.body))}
		b, err := readIdPBody(resp)
		if err != nil || string(b) != c.body {
			t.Errorf("stated %d: read %d bytes, %v; want the %d sent", c.stated, len(b), err, len(c.body))
		}
		if len(c.body) < idpBodyPrealloc && cap(b) > 128<<10 {
			t.Errorf("stated %d, sent %d: a buffer of %d bytes", c.stated, len(c.body), cap(b))
		}
	}
}
