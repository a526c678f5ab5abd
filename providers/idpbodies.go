package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// An IdP's bodies never reach the log. zitadel and x/oauth2 copy a body
// they cannot use into their error ("http status not ok: 500 Internal
// Server Error <the page>", "oauth2: cannot fetch token: ... Response: <the
// page>", "failed to unmarshal response: ... <the page>"), and those errors
// are logged, on every anonymous /oauth2/start while discovery fails. A
// hostile or broken IdP would so write up to a megabyte of its choosing
// into each log line. bodyGuard, beneath every client that talks to an IdP,
// passes a body on only when the caller can use it, and otherwise replaces
// it with a line that says what it was: its media type and size.

// maxIdPBody bounds what is read of any IdP response; the callers read no
// more either.
const maxIdPBody = 1 << 20

// Bounds of what an OAuth error response (RFC 6749 §5.2) keeps.
const (
	maxErrorCode        = 64
	maxErrorDescription = 200
)

// bodyGuard is an http.RoundTripper that reads each response (at most
// maxIdPBody) and passes its body on only when it is
//   - empty;
//   - of a 2xx answer: valid JSON, a compact JWT served as application/jwt
//     (signed userinfo), or an urlencoded form (a plain OAuth2 server's
//     token response);
//   - of another status: an OAuth error object, rebuilt with only its
//     error and error_description, each within the standard's characters
//     and a bound.
//
// Any other body becomes bodyNotShown's line. The status and headers pass
// unchanged.
type bodyGuard struct {
	base http.RoundTripper // nil: http.DefaultTransport
}

// guardBodies wraps base (nil: http.DefaultTransport) in a bodyGuard.
func guardBodies(base http.RoundTripper) http.RoundTripper { return bodyGuard{base: base} }

// guardedClient is hc with its responses through a bodyGuard.
func guardedClient(hc *http.Client) *http.Client {
	c := *hc
	c.Transport = guardBodies(hc.Transport)
	return &c
}

func (g bodyGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	base := g.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := readIdPBody(resp)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("providers: reading the IdP's answer: %w", err)
	}
	if usable := usableBody(resp, body); usable != nil {
		body = usable
	} else {
		body = []byte(bodyNotShown(resp.Header.Get("Content-Type"), len(body)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// readIdPBody reads resp's body, at most maxIdPBody+1 bytes, in one
// allocation when the response says its length (a token response is a
// few kilobytes: io.ReadAll's growing from 512 bytes made a login allocate
// several times that).
func readIdPBody(resp *http.Response) ([]byte, error) {
	r := io.LimitReader(resp.Body, maxIdPBody+1)
	n := resp.ContentLength
	if n < 0 || n > maxIdPBody {
		return io.ReadAll(r)
	}
	// At most idpBodyPrealloc up front: a stated length is not yet a
	// body, and an IdP that states 1 MiB and sends nothing must not pin
	// that much per call (ReadFrom grows past it for a body that comes).
	var buf bytes.Buffer
	buf.Grow(int(min(n, idpBodyPrealloc)) + bytes.MinRead) // ReadFrom wants MinRead free to read the EOF
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// idpBodyPrealloc bounds what readIdPBody allocates on an IdP's word,
// before its body arrives: token, userinfo and discovery answers are a
// few kilobytes.
const idpBodyPrealloc = 64 << 10

// usableBody is the body to pass on, or nil when it must not be.
func usableBody(resp *http.Response, body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	if len(body) > maxIdPBody {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return oauthError(body)
	}
	switch {
	case json.Valid(body):
		return body
	case mediaType == "application/jwt" && compactJWT.Match(bytes.TrimSpace(body)):
		return body
	case mediaType == "application/x-www-form-urlencoded":
		if v, err := url.ParseQuery(string(body)); err == nil && (v.Has("access_token") || v.Has("error")) {
			return body
		}
	}
	return nil
}

var compactJWT = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$`)

// oauthError rebuilds an OAuth error response (RFC 6749 §5.2) with only
// what the callers read of it, or returns nil when body is none.
func oauthError(body []byte) []byte {
	var e struct {
		Code        any `json:"error"`
		Description any `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	code, _ := e.Code.(string)
	if code == "" || len(code) > maxErrorCode || !errorChars(code) {
		return nil
	}
	out := map[string]string{"error": code}
	if d, _ := e.Description.(string); d != "" && errorChars(d) {
		if len(d) > maxErrorDescription {
			d = d[:maxErrorDescription] + "..."
		}
		out["error_description"] = d
	}
	b, _ := json.Marshal(out)
	return b
}

// errorChars reports whether s has only the characters RFC 6749 §5.2
// allows in error and error_description: printable ASCII without " and \.
func errorChars(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// bodyNotShown describes a body that is not passed on: its media type
// (only a well-formed one, without parameters) and size.
func bodyNotShown(contentType string, size int) string {
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || len(mediaType) > 64 || strings.ContainsAny(mediaType, `"\`) {
		mediaType = "no valid media type"
	}
	amount := fmt.Sprintf("%d bytes", size)
	if size > maxIdPBody {
		amount = fmt.Sprintf("more than %d bytes", maxIdPBody)
	}
	return fmt.Sprintf("%s%s, %s)", notShownPrefix, mediaType, amount)
}

const notShownPrefix = "(IdP response body not shown: "

// notShown reports whether body is bodyNotShown's line.
func notShown(body []byte) bool { return bytes.HasPrefix(body, []byte(notShownPrefix)) }

// shortList shows a list an IdP sent (its algorithms, say) in an error:
// at most five entries of at most 32 characters, quoted.
func shortList(l []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range l {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(l)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if len(s) > 32 {
			s = s[:32] + "..."
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteByte(']')
	return b.String()
}
