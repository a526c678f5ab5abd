package broker

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

// tamperer sits in front of a demo IdP and makes it misbehave on purpose:
// it can rewrite the ID token in token responses (re-signed with a key it
// adds to the IdP's JWKS, so that only the intended check fails), and the
// userinfo response. It also records how clients authenticated at the token
// endpoint.
type tamperer struct {
	issuer string
	next   http.Handler

	mu       sync.Mutex
	key      *rsa.PrivateKey
	claims   func(map[string]any) // nil: ID tokens pass unchanged
	sign     string               // "" (RS256 with the tamper key), "none", "HS256:<secret>", "broken"
	kid      string               // kid of re-signed tokens; default "tamper"; "-" for none
	hidden   bool                 // keep the tamper key out of the JWKS
	only     bool                 // publish the tamper key alone, without kid
	signedUI bool                 // answer userinfo as a JWT signed with the tamper key
	uiSign   string               // how to sign it (as sign)
	// clientKey, when set, makes the token endpoint accept private_key_jwt
	// assertions signed by it, and pass the request on with the client's
	// secret (the demo IdP itself knows only secrets).
	clientKey    any
	clientID     string
	clientSecret string
	userinfo     func(map[string]any)
	tokenReq     []tokenRequest
	jwksHits     int
}

func (t *tamperer) keyFetches() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.jwksHits
}

type tokenRequest struct {
	Basic      bool
	FormSecret bool
	Verifier   bool
	Assertion  bool
}

func (t *tamperer) set(f func(*tamperer)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}

func (t *tamperer) requests() []tokenRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]tokenRequest(nil), t.tokenReq...)
}

func (t *tamperer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
		t.tokenReq = append(t.tokenReq, tokenRequest{Basic: basic, FormSecret: form.Get("client_secret") != "",
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
			r.SetBasicAuth(url.QueryEscape(t.clientID), url.QueryEscape(t.clientSecret))
			r.ContentLength = int64(len(b))
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		t.rewriteJSON(w, r, t.rewriteToken)
	case "/userinfo":
		t.mu.Lock()
		f, signed, how := t.userinfo, t.signedUI, t.uiSign
		t.mu.Unlock()
		if signed {
			rec := httptest.NewRecorder()
			t.next.ServeHTTP(rec, r)
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
		t.next.ServeHTTP(w, r)
	}
}

// rewriteJSON runs the IdP, then edits its JSON object response with f.
func (t *tamperer) rewriteJSON(w http.ResponseWriter, r *http.Request, f func(map[string]any)) {
	rec := httptest.NewRecorder()
	t.next.ServeHTTP(rec, r)
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

func (t *tamperer) tamperKey() *rsa.PrivateKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.key == nil {
		t.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	return t.key
}

func (t *tamperer) addKey(m map[string]any) {
	t.mu.Lock()
	hidden := t.hidden
	t.mu.Unlock()
	if hidden {
		return
	}
	t.mu.Lock()
	only := t.only
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
func (t *tamperer) acceptAssertion(form url.Values, tokenURL string) bool {
	t.mu.Lock()
	key, id := t.clientKey, t.clientID
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

func (t *tamperer) rewriteToken(m map[string]any) {
	t.mu.Lock()
	mutate, sign := t.claims, t.sign
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

func (t *tamperer) signToken(claims map[string]any, how string) string {
	payload, _ := json.Marshal(claims)
	switch {
	case how == "none":
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return h + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	case strings.HasPrefix(how, "HS256:"):
		return mustSign(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.TrimPrefix(how, "HS256:"))}, payload)
	}
	t.mu.Lock()
	kid := t.kid
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

func mustSign(key jose.SigningKey, payload []byte) string {
	s, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
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
