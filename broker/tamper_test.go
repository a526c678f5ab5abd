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
	kid      string               // kid of re-signed tokens; default "tamper"
	hidden   bool                 // keep the tamper key out of the JWKS
	userinfo func(map[string]any)
	tokenReq []tokenRequest
	jwksHits int
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
		r.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		_, _, basic := r.BasicAuth()
		t.mu.Lock()
		t.tokenReq = append(t.tokenReq, tokenRequest{Basic: basic, FormSecret: form.Get("client_secret") != "",
			Verifier: form.Get("code_verifier") != ""})
		t.mu.Unlock()
		t.rewriteJSON(w, r, t.rewriteToken)
	case "/userinfo":
		t.rewriteJSON(w, r, func(m map[string]any) {
			t.mu.Lock()
			f := t.userinfo
			t.mu.Unlock()
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
	jwk := jose.JSONWebKey{Key: t.tamperKey().Public(), KeyID: "tamper", Algorithm: "RS256", Use: "sig"}
	b, _ := json.Marshal(jwk)
	var k map[string]any
	_ = json.Unmarshal(b, &k)
	keys, _ := m["keys"].([]any)
	m["keys"] = append(keys, k)
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
	tok := mustSign(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: t.tamperKey(), KeyID: kid}}, payload)
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
