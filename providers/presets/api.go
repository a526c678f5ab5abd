package presets

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Calls to an IdP's own API with the user's access token (GitHub's REST
// API, Microsoft Graph), for the presets' hooks. Every answer is bounded,
// every list is bounded in pages and items, a paging link is followed only
// into the same API (the token goes nowhere else), and an error carries the
// status, never the body.

// Bounds on a preset's API calls.
const (
	// maxAPIPage bounds one answer.
	maxAPIPage = 1 << 20
	// maxAPIPages bounds the pages of one list.
	maxAPIPages = 10
	// maxAPIItems bounds the items of one list (groups, organisations,
	// teams, addresses). Beyond it the list is cut and the groups are
	// marked incomplete: a longer list would not fit in the headers that
	// relay it anyway.
	maxAPIItems = 1000
)

// apiError is a failed API call: no answer (status 0), or a status other
// than 200, or an answer that is not the JSON expected.
type apiError struct {
	path   string
	status int
	err    error
}

func (e *apiError) Error() string {
	switch {
	case e.status == 0:
		return fmt.Sprintf("%s: %v", e.path, e.err)
	case e.err != nil:
		return fmt.Sprintf("%s: status %d: %v", e.path, e.status, e.err)
	}
	return fmt.Sprintf("%s: status %d", e.path, e.status)
}

func (e *apiError) Unwrap() error { return e.err }

// passing reports whether the API could not be reached or failed on its
// side, rather than refusing the call.
func (e *apiError) passing() bool { return e.status == 0 || e.status >= 500 }

// apiRequest is one call to an IdP API.
type apiRequest struct {
	method string
	url    string
	token  string
	header http.Header
	body   string // JSON, or empty
}

// call makes the request with hc and decodes its JSON answer (at most
// maxAPIPage bytes) into v. It returns the answer's headers, for paging.
func (r apiRequest) call(ctx context.Context, hc *http.Client, v any) (http.Header, error) {
	path := pathOf(r.url)
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, cmp.Or(r.method, http.MethodGet), r.url, body)
	if err != nil {
		return nil, &apiError{path: path, err: err}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// No redirect is followed: net/http keeps Authorization on a redirect
	// to the same host name on another port or scheme, and the token must
	// go to this API only. A 3xx is an error like any other status.
	once := *hc
	once.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := once.Do(req)
	if err != nil {
		return nil, &apiError{path: path, err: reasonError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &apiError{path: path, status: resp.StatusCode}
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAPIPage))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return nil, &apiError{path: path, status: resp.StatusCode, err: fmt.Errorf("not the JSON expected (or over %d bytes)", maxAPIPage)}
	}
	return resp.Header, nil
}

// pathOf is u's path: errors name it, without query or host.
func pathOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return "(unparsable URL)"
}

// reasonError is a transport error without its URL (which may carry a
// query the caller did not mean to log).
func reasonError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// sameAPI reports whether next, a paging link from an answer of the API at
// base, points into that API: same scheme and host, and a path under
// base's. Only there is the user's access token sent.
func sameAPI(base, next string) bool {
	b, err1 := url.Parse(base)
	n, err2 := url.Parse(next)
	if err1 != nil || err2 != nil || n.User != nil {
		return false
	}
	prefix := strings.TrimSuffix(b.Path, "/") + "/"
	return n.Scheme == b.Scheme && strings.EqualFold(n.Host, b.Host) && strings.HasPrefix(n.Path, prefix)
}

// nextLink returns the URL of the RFC 8288 Link header's rel="next", or "".
func nextLink(h http.Header) string {
	for _, link := range h.Values("Link") {
		for part := range strings.SplitSeq(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			target = strings.TrimSpace(target)
			if !ok || len(target) < 2 || target[0] != '<' || target[len(target)-1] != '>' {
				continue
			}
			for param := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}

// pagedList reads a list API page by page: first is the first page's
// request, page decodes one answer into its items and returns the next
// page's URL ("" at the end). It stops at maxAPIPages pages, maxAPIItems
// items, or a next link out of the API at base; complete is false then.
func pagedList[T any](ctx context.Context, hc *http.Client, base string, first apiRequest,
	page func(h http.Header, raw json.RawMessage) (items []T, next string, err error)) (all []T, complete bool, err error) {
	req := first
	for range maxAPIPages {
		var raw json.RawMessage
		h, err := req.call(ctx, hc, &raw)
		if err != nil {
			return nil, false, err
		}
		items, next, err := page(h, raw)
		if err != nil {
			return nil, false, &apiError{path: pathOf(req.url), status: http.StatusOK, err: err}
		}
		all = append(all, items...)
		switch {
		case len(all) > maxAPIItems:
			return all[:maxAPIItems], false, nil
		case next == "":
			return all, true, nil
		case !sameAPI(base, next):
			return all, false, nil
		}
		req.url = next
	}
	return all, false, nil
}
