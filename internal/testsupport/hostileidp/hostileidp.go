// Package hostileidp puts a misbehaving OpenID Provider in front of a real
// one, for tests: it rewrites the ID token in token responses (re-signed with
// a key it adds to the IdP's JWKS, so that only the intended check fails),
// can answer userinfo as a signed JWT, hide or isolate its key, sign without a
// kid, accept private_key_jwt client assertions in front of an IdP that
// knows only secrets, and answer any endpoint with an error page. It records
// how clients authenticated at the token endpoint and how often the JWKS was
// fetched.
//
// TEST-ONLY. It expects the zitadel op paths /keys, /oauth/token and
// /userinfo (the demo package's IdP).
package hostileidp

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// IdP wraps a real IdP's handler. Its exported fields choose the
// misbehaviour; change them with Set while the IdP is serving.
type IdP struct {
	// Next is the real IdP.
	Next http.Handler

	// Claims, when set, rewrites the claims of every ID token, which is then
	// re-signed as Sign says. nil passes ID tokens unchanged.
	Claims func(map[string]any)
	// Sign is how re-signed tokens are signed: "" (RS256 with the wrapper's
	// key), "broken" (that, with the signature corrupted), "none", or
	// "HS256:<secret>".
	Sign string
	// Kid is the kid of re-signed tokens: default "tamper"; "-" for none.
	Kid string
	// Hidden keeps the wrapper's key out of the JWKS; Only publishes it
	// alone, without a kid.
	Hidden, Only bool
	// SignedUserinfo answers userinfo as a JWT, signed as UserinfoSign says
	// (the values of Sign); Userinfo, when set, rewrites its claims first.
	SignedUserinfo bool
	UserinfoSign   string
	Userinfo       func(map[string]any)
	// ClientKey, when set, makes the token endpoint accept private_key_jwt
	// assertions (RFC 7523) signed by it for ClientID, and pass the request
	// on authenticated with ClientSecret (for an IdP that knows only secrets).
	ClientKey    any
	ClientID     string
	ClientSecret string
	// ReplayCodes answers a code redeemed before with the same tokens
	// again, as an IdP that does not make codes single-use would.
	ReplayCodes bool
	// ErrorPages answers the requests to these paths (such as
	// "/.well-known/openid-configuration", "/oauth/token", "/keys",
	// "/userinfo") with the page instead of the IdP's answer.
	ErrorPages map[string]ErrorPage

	mu       sync.Mutex
	redeemed map[string][]byte // ReplayCodes: code → token response
	key      *rsa.PrivateKey
	tokenReq []TokenRequest
	jwksHits int
}

// ErrorPage is an answer that is not what the endpoint should give: an
// HTML error page, say.
type ErrorPage struct {
	Status      int
	ContentType string
	Body        string
}

// TokenRequest is how a client authenticated at the token endpoint.
type TokenRequest struct {
	Basic      bool // HTTP Basic
	FormSecret bool // client_secret in the form
	Verifier   bool // a PKCE code_verifier
	Assertion  bool // a client_assertion
}

// Set changes the IdP's behaviour under its lock.
func (t *IdP) Set(f func(*IdP)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}

// KeyFetches counts the JWKS requests.
func (t *IdP) KeyFetches() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.jwksHits
}

// TokenRequests lists how clients authenticated, in order.
func (t *IdP) TokenRequests() []TokenRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TokenRequest(nil), t.tokenReq...)
}

func (t *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	page, failing := t.ErrorPages[r.URL.Path]
	t.mu.Unlock()
	if failing {
		w.Header().Set("Content-Type", page.ContentType)
		w.WriteHeader(page.Status)
		_, _ = io.WriteString(w, page.Body)
		return
	}
	switch r.URL.Path {
	case "/keys":
		t.mu.Lock()
		t.jwksHits++
		t.mu.Unlock()
		t.rewriteJSON(w, r, t.addKey)
	case "/oauth/token":
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		_, _, basic := r.BasicAuth()
		t.mu.Lock()
		t.tokenReq = append(t.tokenReq, TokenRequest{Basic: basic, FormSecret: form.Get("client_secret") != "",
			Verifier: form.Get("code_verifier") != "", Assertion: form.Has("client_assertion")})
		t.mu.Unlock()
		if form.Has("client_assertion") {
			if !t.acceptAssertion(form, "http://"+r.Host+r.URL.Path) {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			form.Del("client_assertion")
			form.Del("client_assertion_type")
			form.Del("client_id")
			b = []byte(form.Encode())
			r.SetBasicAuth(url.QueryEscape(t.ClientID), url.QueryEscape(t.ClientSecret))
			r.ContentLength = int64(len(b))
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		t.mu.Lock()
		replay, code := t.ReplayCodes, form.Get("code")
		prev := t.redeemed[code]
		t.mu.Unlock()
		if !replay || code == "" {
			t.rewriteJSON(w, r, t.rewriteToken)
			return
		}
		status := http.StatusOK
		if prev == nil {
			rec := httptest.NewRecorder()
			t.rewriteJSON(rec, r, t.rewriteToken)
			if prev, status = rec.Body.Bytes(), rec.Code; status == http.StatusOK {
				t.mu.Lock()
				if t.redeemed == nil {
					t.redeemed = map[string][]byte{}
				}
				t.redeemed[code] = prev
				t.mu.Unlock()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(prev)
	case "/userinfo":
		t.mu.Lock()
		f, signed, how := t.Userinfo, t.SignedUserinfo, t.UserinfoSign
		t.mu.Unlock()
		if signed {
			rec := httptest.NewRecorder()
			t.Next.ServeHTTP(rec, r)
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			if f != nil {
				f(m)
			}
			w.Header().Set("Content-Type", "application/jwt")
			_, _ = io.WriteString(w, t.signToken(m, how))
			return
		}
		t.rewriteJSON(w, r, func(m map[string]any) {
			if f != nil {
				f(m)
			}
		})
	default:
		t.Next.ServeHTTP(w, r)
	}
}

// rewriteJSON runs the IdP, then edits its JSON object response with f.
func (t *IdP) rewriteJSON(w http.ResponseWriter, r *http.Request, f func(map[string]any)) {
	rec := httptest.NewRecorder()
	t.Next.ServeHTTP(rec, r)
	var m map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	f(m)
	b, _ := json.Marshal(m)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(b)
}

func (t *IdP) tamperKey() *rsa.PrivateKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key == nil {
		t.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	return t.key
}

func (t *IdP) addKey(m map[string]any) {
	t.mu.Lock()
	hidden := t.Hidden
	t.mu.Unlock()
	if hidden {
		return
	}
	t.mu.Lock()
	only := t.Only
	t.mu.Unlock()
	jwk := jose.JSONWebKey{Key: t.tamperKey().Public(), KeyID: "tamper", Algorithm: "RS256", Use: "sig"}
	if only {
		jwk.KeyID = ""
	}
	b, _ := json.Marshal(jwk)
	var k map[string]any
	_ = json.Unmarshal(b, &k)
	keys, _ := m["keys"].([]any)
	if only {
		keys = nil
	}
	m["keys"] = append(keys, k)
}

// acceptAssertion verifies a private_key_jwt client assertion (RFC 7523):
// signed by the registered key, iss and sub the client, aud the token
// endpoint, not expired.
func (t *IdP) acceptAssertion(form url.Values, tokenURL string) bool {
	t.mu.Lock()
	key, id := t.ClientKey, t.ClientID
	t.mu.Unlock()
	if key == nil || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return false
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return false
	}
	var c jwt.Claims
	if err := tok.Claims(key, &c); err != nil {
		return false
	}
	return c.Issuer == id && c.Subject == id && c.Expiry != nil &&
		c.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{tokenURL}}, 0) == nil
}

func (t *IdP) rewriteToken(m map[string]any) {
	t.mu.Lock()
	mutate, sign := t.Claims, t.Sign
	t.mu.Unlock()
	raw, _ := m["id_token"].(string)
	if mutate == nil || raw == "" {
		return
	}
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	mutate(claims)
	m["id_token"] = t.signToken(claims, sign)
}

// Mint signs claims as a token of this IdP: how is one of Sign's values
// ("" signs with the wrapper's key, published in the JWKS unless Hidden),
// typ the JOSE header's typ ("at+jwt" for an RFC 9068 access token). For
// the access tokens an API client presents.
func (t *IdP) Mint(claims map[string]any, how, typ string) string {
	payload, _ := json.Marshal(claims)
	if typ == "" || typ == "JWT" || how == "none" || strings.HasPrefix(how, "HS256:") {
		return t.signToken(claims, how)
	}
	return mustSignTyp(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: t.tamperKey(), KeyID: "tamper"}}, payload, jose.ContentType(typ))
}

func (t *IdP) signToken(claims map[string]any, how string) string {
	payload, _ := json.Marshal(claims)
	switch {
	case how == "none":
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return h + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	case strings.HasPrefix(how, "HS256:"):
		return mustSign(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.TrimPrefix(how, "HS256:"))}, payload)
	}
	t.mu.Lock()
	kid := t.Kid
	t.mu.Unlock()
	if kid == "" {
		kid = "tamper"
	}
	var key any = jose.JSONWebKey{Key: t.tamperKey(), KeyID: kid}
	if kid == "-" {
		key = t.tamperKey()
	}
	tok := mustSign(jose.SigningKey{Algorithm: jose.RS256, Key: key}, payload)
	if how == "broken" {
		i := strings.LastIndexByte(tok, '.') + 5
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		tok = tok[:i] + string(c) + tok[i+1:]
	}
	return tok
}

func mustSign(key jose.SigningKey, payload []byte) string { return mustSignTyp(key, payload, "JWT") }

func mustSignTyp(key jose.SigningKey, payload []byte, typ jose.ContentType) string {
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		panic(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}
