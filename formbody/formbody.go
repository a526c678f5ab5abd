// Package formbody reads request bodies the one way the broker (and its
// demo IdP) accepts them: an application/x-www-form-urlencoded form within a
// small bound, read straight from the body.
//
// It exists because net/http's own form helpers are unsafe defaults for a
// server that anonymous clients reach: FormValue and PostFormValue run the
// multipart parser with 32 MB of memory and spill the rest into temporary
// files, which the server removes only for the request it passed to the
// handler, not for a copy a middleware made; ParseForm mixes the query
// string into Form and reads up to 10 MB. Read refuses anything that is not
// an urlencoded form before reading a byte, reads at most the bound, and
// never touches the query string. Limit does the same for handlers of other
// libraries that parse bodies themselves.
package formbody

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// ContentType is the one media type a body may have.
const ContentType = "application/x-www-form-urlencoded"

// ErrNotForm: the request has a body of another media type (multipart
// included), or none is named. Nothing was read.
var ErrNotForm = errors.New("formbody: the body is not " + ContentType)

// Read returns the fields of r's body, which must be an
// application/x-www-form-urlencoded form of at most max bytes; a request
// without a body has no fields. The query string is not read, and neither
// r.Form nor r.PostForm is set. Read checks the media type and a declared
// Content-Length before it reads anything, and reads at most max+1 bytes
// of a body of unknown length (http.MaxBytesReader, so that w's server
// closes the connection instead of draining the rest).
//
// The error is ErrNotForm, an *http.MaxBytesError for a body over max, or
// the reader's (a client that stalls until the server's read timeout) or
// the parser's; Status turns it into an HTTP status.
func Read(w http.ResponseWriter, r *http.Request, max int64) (url.Values, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return url.Values{}, nil
	}
	if err := check(r, max); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return nil, err
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, fmt.Errorf("formbody: %w", err)
	}
	return v, nil
}

// Status is the HTTP status that answers an error of Read: 415 for a body
// that is not a form, 413 for one over the bound, 400 for anything else.
func Status(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, ErrNotForm):
		return http.StatusUnsupportedMediaType
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// Limit is middleware for handlers that parse the body themselves (another
// library's): a request with a body that is not an urlencoded form, or that
// declares more than max bytes, gets 415 or 413 before next runs; otherwise
// next reads the body through http.MaxBytesReader(max), so its own parser
// (ParseForm, even FormValue) finds an urlencoded form of at most max bytes
// and no multipart.
func Limit(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
				if err := check(r, max); err != nil {
					http.Error(w, http.StatusText(Status(err)), Status(err))
					return
				}
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// check refuses, before reading, a body of another media type or a
// declared length over max.
func check(r *http.Request, max int64) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != ContentType {
		return ErrNotForm
	}
	if r.ContentLength > max {
		return &http.MaxBytesError{Limit: max}
	}
	return nil
}
