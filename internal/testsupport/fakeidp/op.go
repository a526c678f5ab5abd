// Package fakeidp serves in-process fakes of the identity providers that
// oidc-broker's presets know, in the shapes of their real APIs: a small
// OpenID Provider laid out as Google, GitLab, Keycloak, Okta or Microsoft
// Entra ID (per-tenant paths and issuers), a fake Microsoft Graph, and
// GitHub's OAuth endpoints and REST API (github.com and Enterprise Server
// paths, Link-header pagination). Tests of several packages start them on
// httptest servers.
//
// TEST-ONLY. There is no login page: the authorization endpoint signs in,
// at once, the user whose Login equals the request's login_hint (the
// broker passes /oauth2/start?login_hint= on), and answers access_denied
// when there is none. Codes are single-use and bound to the client, the
// redirect URI and the PKCE challenge (S256), as at the real IdPs.
package fakeidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// User is an account at a fake OpenID Provider.
type User struct {
	// Login selects the user: the authorization request's login_hint.
	Login string
	// Claims go into the user's ID tokens (sub is required), besides the
	// ones the OP sets itself: iss, aud, iat, exp, nonce, at_hash.
	Claims map[string]any
	// Userinfo is the userinfo endpoint's answer; nil: Claims. Its sub is
	// always Claims' sub.
	Userinfo map[string]any
	// Groups are the groups Microsoft Graph knows the user to be a member
	// of (Entra ID only).
	Groups []Group
}

// Group is a group in Microsoft Graph.
type Group struct {
	ID, Name string
}

// OP is a fake OpenID Provider. Configure it before it serves.
type OP struct {
	// URL is where it serves (the httptest server's URL).
	URL string
	// ClientID, ClientSecret and RedirectURI are the one registered client;
	// the secret is accepted by HTTP Basic or in the form.
	ClientID, ClientSecret, RedirectURI string
	// RefreshTokens says when a code exchange also issues a refresh token,
	// given the authorization request; nil: never.
	RefreshTokens func(auth url.Values) bool

	layout layout
	key    *rsa.PrivateKey
	srv    *httptest.Server

	mu       sync.Mutex
	users    map[string]User
	codes    map[string]grant
	access   map[string]grant
	refresh  map[string]grant
	requests []url.Values
}

// layout is where an IdP serves what: the paths under a prefix, and the
// issuer of each place.
type layout struct {
	// prefix is the path of the issuer ("/realms/main", "/oauth2/default");
	// with tenants, the first path segment is the tenant instead.
	prefix  string
	tenants bool
	// paths of the endpoints, under the prefix (or tenant).
	discovery, authorize, token, userinfo, keys, endSession string
	// issuer is the issuer a discovery document at prefix states; tokens
	// carry tokenIssuer(user) when set, else the same.
	issuer      func(base, tenant string) string
	tokenIssuer func(base string, u User) string
	// more are further discovery fields.
	more map[string]any
}

// grant is a code, access token or refresh token and what it stands for.
type grant struct {
	user      User
	issuer    string
	nonce     string
	challenge string
	redirect  string
	auth      url.Values
}

// start serves op on a new httptest server.
func (op *OP) start(l layout) *OP {
	op.layout = l
	op.key = newKey()
	op.users = map[string]User{}
	op.codes, op.access, op.refresh = map[string]grant{}, map[string]grant{}, map[string]grant{}
	op.srv = httptest.NewServer(op)
	op.URL = op.srv.URL
	return op
}

// Close stops the server.
func (op *OP) Close() { op.srv.Close() }

// AddUser adds (or replaces) an account.
func (op *OP) AddUser(u User) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.users[u.Login] = u
}

// AuthRequests returns the query of every authorization request so far.
func (op *OP) AuthRequests() []url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]url.Values(nil), op.requests...)
}

// Issuer is the issuer a discovery document at the prefix (or at tenant,
// for Entra ID) states.
func (op *OP) Issuer(tenant string) string { return op.layout.issuer(op.URL, tenant) }

func (op *OP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, tenant, ok := op.route(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	l := op.layout
	switch rest {
	case l.discovery:
		op.serveDiscovery(w, tenant)
	case l.authorize:
		op.authorize(w, r, tenant)
	case l.token:
		op.token(w, r)
	case l.userinfo:
		op.userinfo(w, r)
	case l.keys:
		pub := jose.JSONWebKey{Key: &op.key.PublicKey, KeyID: "fake-1", Algorithm: "RS256", Use: "sig"}
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	default:
		http.NotFound(w, r)
	}
}

// route splits a path into the endpoint path and the tenant.
func (op *OP) route(path string) (rest, tenant string, ok bool) {
	if op.layout.tenants {
		tenant, rest, ok = strings.Cut(strings.TrimPrefix(path, "/"), "/")
		return "/" + rest, tenant, ok
	}
	rest, ok = strings.CutPrefix(path, op.layout.prefix)
	return rest, "", ok
}

// base is the URL under which tenant's (or the prefix's) endpoints are.
func (op *OP) base(tenant string) string {
	if op.layout.tenants {
		return op.URL + "/" + tenant
	}
	return op.URL + op.layout.prefix
}

func (op *OP) serveDiscovery(w http.ResponseWriter, tenant string) {
	l, b := op.layout, op.base(tenant)
	doc := map[string]any{
		"issuer": l.issuer(op.URL, tenant), "authorization_endpoint": b + l.authorize, "token_endpoint": b + l.token,
		"jwks_uri": b + l.keys, "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	}
	if l.userinfo != "" {
		doc["userinfo_endpoint"] = b + l.userinfo
	}
	if l.endSession != "" {
		doc["end_session_endpoint"] = b + l.endSession
	}
	maps.Copy(doc, l.more)
	writeJSON(w, http.StatusOK, doc)
}

func (op *OP) authorize(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	op.mu.Lock()
	op.requests = append(op.requests, q)
	u, known := op.users[q.Get("login_hint")]
	op.mu.Unlock()
	if q.Get("client_id") != op.ClientID || q.Get("redirect_uri") != op.RedirectURI || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(op.RedirectURI)
	answer := url.Values{"state": {q.Get("state")}}
	if !known {
		answer.Set("error", "access_denied")
	} else {
		code := randomString()
		iss := op.layout.issuer(op.URL, tenant)
		if op.layout.tokenIssuer != nil {
			iss = op.layout.tokenIssuer(op.URL, u)
		}
		op.mu.Lock()
		op.codes[code] = grant{user: u, issuer: iss, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
			redirect: q.Get("redirect_uri"), auth: q}
		op.mu.Unlock()
		answer.Set("code", code)
	}
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != op.ClientID || secret != op.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	op.mu.Lock()
	var g grant
	var ok bool
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok = op.codes[code]
		delete(op.codes, code) // single-use
		ok = ok && g.redirect == r.PostForm.Get("redirect_uri") && s256(r.PostForm.Get("code_verifier")) == g.challenge
	case "refresh_token":
		g, ok = op.refresh[r.PostForm.Get("refresh_token")]
		g.nonce = "" // a refreshed ID token carries none
	}
	op.mu.Unlock()
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	access := randomString()
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600,
		"id_token": op.idToken(g, access)}
	op.mu.Lock()
	op.access[access] = g
	if op.RefreshTokens != nil && op.RefreshTokens(g.auth) {
		rt := randomString()
		op.refresh[rt] = g
		answer["refresh_token"] = rt
	}
	op.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, answer)
}

// idToken signs the ID token of g, bound to the access token (at_hash).
func (op *OP) idToken(g grant, access string) string {
	now := time.Now()
	claims := maps.Clone(g.user.Claims)
	claims["iss"], claims["aud"], claims["iat"], claims["exp"] = g.issuer, op.ClientID, now.Unix(), now.Add(time.Hour).Unix()
	sum := sha256.Sum256([]byte(access))
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	return Sign(op.key, "fake-1", claims)
}

// LogoutToken signs a back-channel logout token (OpenID Connect
// Back-Channel Logout 1.0) for the registered client: for the user sub,
// and the IdP session sid unless "", with a fresh jti.
func (op *OP) LogoutToken(sub, sid string) string {
	now := time.Now()
	claims := map[string]any{"iss": op.Issuer(""), "aud": op.ClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": randomString(), "sub": sub,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	if sid != "" {
		claims["sid"] = sid
	}
	return Sign(op.key, "fake-1", claims)
}

// Token returns the user of an access token this OP issued.
func (op *OP) Token(access string) (User, bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	g, ok := op.access[access]
	return g.user, ok
}

func (op *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	u, ok := op.Token(bearer(r))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	info := u.Userinfo
	if info == nil {
		info = u.Claims
	}
	info = maps.Clone(info)
	info["sub"] = u.Claims["sub"]
	writeJSON(w, http.StatusOK, info)
}

// Sign signs claims as a compact JWS with key (RS256, the kid given).
func Sign(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

// newKey is a signing key of the fake's own: a token of one fake IdP
// never verifies at another.
func newKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string { return rand.Text() }

// bearer is the access token of an "Authorization: Bearer" (or GitHub's
// "token") header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, scheme := range []string{"Bearer ", "bearer ", "token "} {
		if t, ok := strings.CutPrefix(h, scheme); ok {
			return t
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

// Mint signs claims with the OP's own key (review test helper).
func (op *OP) Mint(claims map[string]any) string { return Sign(op.key, "fake-1", claims) }
