package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// errJWKSRateLimited: the last JWKS fetch failed too recently to try again.
var errJWKSRateLimited = errors.New("providers: JWKS fetch failed recently; not retrying yet")

// maxIdleConnsPerIdP is how many idle connections to one IdP host the
// default transport keeps for reuse. Every login makes a token call (and
// perhaps a userinfo call) to its IdP, and as many logins run at once as
// users sign in; net/http's default keeps 2 per host, so with 8 logins at
// once most token calls opened a new connection (and left a socket in
// TIME_WAIT). Idle connections close after the transport's idle timeout.
const maxIdleConnsPerIdP = 64

// defaultTransport is the transport of the default Options.HTTPClient,
// shared by the providers of every registry: net/http's default transport
// (proxy from the environment, dial and TLS timeouts, HTTP/2) with a
// per-host idle pool sized for concurrent logins.
var defaultTransport = sync.OnceValue(func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdleConnsPerIdP
	t.MaxIdleConns = max(t.MaxIdleConns, 4*maxIdleConnsPerIdP)
	return t
})

// maxDocument bounds the discovery document and the JWKS the transport keeps.
const maxDocument = 1 << 20

// idpTransport is the HTTP transport of one provider. It keeps the body of
// the discovery response (zitadel parses only the fields it knows; the last
// response when the discovery URL redirects), and it
// rate-limits JWKS fetches: zitadel's key set fetches the JWKS whenever a
// token names a kid it has not cached, so without a limit every forged kid
// would cost a request to the IdP. Within jwksMinInterval of the last real
// fetch, the cached response is replayed instead.
type idpTransport struct {
	base            http.RoundTripper
	discoveryURL    string
	now             func() time.Time
	jwksMinInterval time.Duration

	mu       sync.Mutex
	discBody []byte
	jwksURL  string
	jwksBody []byte
	jwksType string
	jwksTry  time.Time // last fetch, successful or not
}

func (t *idpTransport) discovery() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.discBody
}

func (t *idpTransport) setJWKSURL(u string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.jwksURL = u
}

func (t *idpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	t.mu.Lock()
	isJWKS := req.Method == http.MethodGet && u == t.jwksURL && t.jwksURL != ""
	if isJWKS && t.now().Sub(t.jwksTry) < t.jwksMinInterval {
		defer t.mu.Unlock()
		if t.jwksBody == nil {
			return nil, errJWKSRateLimited
		}
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {t.jwksType}}, Body: io.NopCloser(bytes.NewReader(t.jwksBody)),
			ContentLength: int64(len(t.jwksBody)), Request: req}, nil
	}
	if isJWKS {
		t.jwksTry = t.now()
	}
	keep := isJWKS || (t.discBody == nil && firstURL(req) == t.discoveryURL)
	t.mu.Unlock()

	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || !keep || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if !decodes(body, isJWKS) && !notShown(body) {
		// zitadel would quote the whole document in its decoding error.
		body = []byte(bodyNotShown(resp.Header.Get("Content-Type"), len(body)))
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return resp, nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.mu.Lock()
	if isJWKS {
		t.jwksBody, t.jwksType = body, resp.Header.Get("Content-Type")
	} else {
		t.discBody = body
	}
	t.mu.Unlock()
	return resp, nil
}

// decodes reports whether body decodes into what zitadel decodes a JWKS
// or a discovery document into, so that its error (which quotes the body)
// cannot happen.
func decodes(body []byte, jwks bool) bool {
	if jwks {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		return json.Unmarshal(body, &set) == nil
	}
	return json.Unmarshal(body, new(oidc.DiscoveryConfiguration)) == nil
}

// firstURL is the URL of the request that req follows a redirect of, or
// req's own: http.Client sets Response on the request it makes for a
// redirect, and that response's Request is the one before.
func firstURL(req *http.Request) string {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req.URL.String()
}
