package broker

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session/store"
)

// A pending login is what the broker needs between /oauth2/start and the
// callback: the state, nonce and PKCE verifier, the provider that started
// it, and where to go afterwards. It is kept in the browser that started
// the login, not on the server: sealed (AES-256-GCM, crypto/cipher) into a
// cookie of its own that lives as long as the login may take, one cookie
// per login so that parallel tabs never overwrite each other.
//
// So an anonymous client that starts logins, any number of them, makes the
// broker keep nothing: no session, no Redis key, no pub/sub message. The
// only server-side write of a login, the mark that spends its state, is
// made once the IdP has accepted the code (or the password was right), so
// only a real login can make one, and it expires with the login's ten
// minutes.
//
// The cookie is bound to its state (the cookie's name is derived from the
// state, and the sealed state must equal the one that comes back) and to
// this browser: it holds the hash of the browser's binding cookie, a random
// value under the __Host- prefix behind https, which no other site, not
// even a sibling subdomain, can set. So a pending-login cookie planted in
// a victim's browser (cookie tossing from a subdomain) does not sign the
// victim in as the attacker. The provider and the time it was made are
// sealed inside it.
type pendingLogin struct {
	State       string    `json:"s"`
	Provider    string    `json:"p"`
	Nonce       string    `json:"n"`
	Verifier    string    `json:"v"`
	RedirectURI string    `json:"u"`
	RD          string    `json:"r,omitempty"`
	Created     time.Time `json:"c"`
	// Remember: the user asked to stay signed in (session.persistent_max).
	Remember bool `json:"m,omitempty"`
	// Browser is the hash of the browser's binding cookie (bindingHash).
	Browser string `json:"b"`
	// StepUp is what the login asked of the IdP (stepup.go): max_age in
	// seconds, acr_values. The callback verifies the ID token against it.
	MaxAge    int64    `json:"ma,omitempty"`
	ACRValues []string `json:"a,omitempty"`
}

// Limits on pending logins.
const (
	pendingTTL = 10 * time.Minute
	// maxPending bounds the pending-login cookies a browser holds: a start
	// beyond it drops the oldest, so the Cookie header stays small (about
	// 480 bytes each with a short rd).
	maxPending = 8
	// maxPendingBytes bounds their names and values together (a long rd
	// makes a cookie up to 3.5 KB): the oldest go first, so that the
	// Cookie header fits proxies' limits (nginx: 8 KB a header line).
	maxPendingBytes = 6 << 10
	// pendingCookieInfix is between the session cookie's base name and
	// the state's first characters in a pending-login cookie's name.
	pendingCookieInfix = "_login_"
	// pendingNameChars of the state name its cookie: 72 random bits, so
	// the logins of one browser never share a cookie.
	pendingNameChars = 12
	// pendingSecretName names the store's secret the cookies are sealed
	// with (backend.secret).
	pendingSecretName = "pending-login"
	// bindingCookieSuffix follows the session cookie's base name in the
	// browser binding cookie's.
	bindingCookieSuffix = "_browser"
	// secretRecheck is how often, at most, a cookie that does not open
	// makes the broker read the sealing secret again (it may have been
	// made anew, if Redis lost it).
	secretRecheck = time.Minute
)

// randomToken returns 32 bytes from crypto/rand, base64url-encoded.
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("broker: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return b
}

// pendingSeal seals and opens pending-login cookies with the AEAD made
// from the store's shared secret (so that a login started on one replica
// finishes on another). It asks the store once; a failure is not kept, the
// next login asks again. When a cookie does not open, it asks again at most
// once per secretRecheck (stale), so that replicas follow a secret made
// anew after Redis lost it. It lives as long as the process, across
// reloads.
type pendingSeal struct {
	mu      sync.Mutex
	aead    cipher.AEAD
	checked time.Time
}

// cipher returns the AEAD, asking store for the secret on first use.
func (p *pendingSeal) cipher(ctx context.Context, st store.Backend) (cipher.AEAD, error) {
	p.mu.Lock()
	aead := p.aead
	p.mu.Unlock()
	if aead != nil {
		return aead, nil
	}
	return p.load(ctx, st, time.Now())
}

// load reads the secret and makes the AEAD.
func (p *pendingSeal) load(ctx context.Context, st store.Backend, now time.Time) (cipher.AEAD, error) {
	key, err := st.Secret(ctx, pendingSecretName)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("broker: pending-login secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("broker: pending-login secret: %w", err)
	}
	p.mu.Lock()
	p.aead, p.checked = aead, now
	p.mu.Unlock()
	return aead, nil
}

// stale returns a fresh AEAD when the secret may have changed since it was
// last read (at most once per secretRecheck), or nil.
func (p *pendingSeal) stale(ctx context.Context, st store.Backend) cipher.AEAD {
	now := time.Now()
	p.mu.Lock()
	due := now.Sub(p.checked) >= secretRecheck
	if due {
		p.checked = now // one caller reads it
	}
	p.mu.Unlock()
	if !due {
		return nil
	}
	aead, err := p.load(ctx, st, now)
	if err != nil {
		return nil
	}
	return aead
}

// bindingCookie is the browser binding cookie's attributes: Path=/ and the
// __Host- prefix behind https (a cookie no other host can set), HttpOnly,
// SameSite=Lax, for the browser's session. Its value is random.
func (s *Server) bindingCookie(o origin) http.Cookie {
	c := http.Cookie{Name: s.sessions.BaseName() + bindingCookieSuffix, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: o.Secure()}
	if c.Secure {
		c.Name = "__Host-" + c.Name
	}
	return c
}

// browserBinding returns the hash of this browser's binding cookie, and
// sets a new cookie when it has none.
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request, o origin) string {
	c := s.bindingCookie(o)
	if got, err := r.Cookie(c.Name); err == nil && len(got.Value) == len(randomToken()) {
		return bindingHash(got.Value)
	}
	c.Value = randomToken()
	w.Header().Add("Set-Cookie", c.String())
	return bindingHash(c.Value)
}

// sameBrowser reports whether pl was made in the browser of r.
func (s *Server) sameBrowser(r *http.Request, o origin, pl pendingLogin) bool {
	c, err := r.Cookie(s.bindingCookie(o).Name)
	return err == nil && pl.Browser != "" && subtle.ConstantTimeCompare([]byte(bindingHash(c.Value)), []byte(pl.Browser)) == 1
}

func bindingHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pendingCookieName is the name of the cookie of the login with state,
// with the __Secure- prefix behind https (not __Host-: the cookie is
// scoped to the broker's /oauth2/ paths).
func (s *Server) pendingCookieName(o origin, state string) string {
	name := s.sessions.BaseName() + pendingCookieInfix + state[:min(len(state), pendingNameChars)]
	if o.Secure() {
		name = "__Secure-" + name
	}
	return name
}

// pendingCookie is the attributes of a pending-login cookie: HttpOnly,
// SameSite=Lax (the IdP's redirect back is a top-level GET), Secure behind
// https, sent only to the broker's /oauth2/ paths, and expiring with the
// login.
func (s *Server) pendingCookie(o origin, state string) http.Cookie {
	c := oauth2Cookie(o, s.pendingCookieName(o, state))
	c.MaxAge = int(pendingTTL / time.Second)
	return c
}

// oauth2Cookie is a cookie of the broker's own /oauth2/ paths (it never
// reaches an app): HttpOnly, SameSite=Lax, Secure behind https. name is
// whole, prefix included.
func oauth2Cookie(o origin, name string) http.Cookie {
	return http.Cookie{Name: name, Path: o.Path("/oauth2/"), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: o.Secure()}
}

// savePending sets the cookie of pl. Beyond maxPending logins in flight
// in this browser, the oldest cookies are expired; so are cookies that do
// not open (from an earlier key, or damaged).
func (s *Server) savePending(ctx context.Context, w http.ResponseWriter, r *http.Request, o origin, pl pendingLogin) error {
	aead, err := s.pending.cipher(ctx, s.store)
	if err != nil {
		return err
	}
	pl.Browser = s.browserBinding(w, r, o)
	c := s.pendingCookie(o, pl.State)
	if c.Value, err = sealPending(aead, c.Name, pl); err != nil {
		return err
	}
	type held struct {
		name    string
		size    int
		created time.Time
	}
	var others []held
	total := len(c.Name) + len(c.Value)
	prefix := s.pendingCookieName(o, "")
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, prefix) || len(ck.Name) != len(prefix)+pendingNameChars {
			continue
		}
		if other, err := openPending(aead, ck.Name, ck.Value); err == nil {
			others = append(others, held{ck.Name, len(ck.Name) + len(ck.Value), other.Created})
			total += len(ck.Name) + len(ck.Value)
			continue
		}
		s.expirePending(w, o, ck.Name)
	}
	slices.SortFunc(others, func(a, b held) int { return a.created.Compare(b.created) })
	for len(others) > 0 && (len(others) >= maxPending || total > maxPendingBytes) {
		s.expirePending(w, o, others[0].name)
		total -= others[0].size
		others = others[1:]
	}
	w.Header().Add("Set-Cookie", c.String())
	return nil
}

// takePending finds the pending login of state in this browser's cookies
// and expires its cookie: whatever the callback decides, this login is
// over. The reason says why none was found (for the audit log); err is a
// failure of the store that keeps the sealing secret.
func (s *Server) takePending(w http.ResponseWriter, r *http.Request, o origin, state string) (pendingLogin, auditReason, error) {
	pl, reason, found, err := s.findPending(r, o, state)
	if found {
		s.expirePending(w, o, s.pendingCookieName(o, state))
	}
	return pl, reason, err
}

// peekPending finds the pending login of state in this browser's cookies
// and leaves it there (the local login form, which may be posted again
// after a wrong password). It does not check the provider or the age: the
// callers do, with their own messages.
func (s *Server) peekPending(r *http.Request, o origin, state string) (pendingLogin, auditReason, error) {
	pl, reason, _, err := s.findPending(r, o, state)
	return pl, reason, err
}

// findPending is peekPending, and whether the request carried the cookie.
func (s *Server) findPending(r *http.Request, o origin, state string) (pl pendingLogin, reason auditReason, found bool, err error) {
	if state == "" {
		return pendingLogin{}, because(whyMissingState, "missing state"), false, nil
	}
	name := s.pendingCookieName(o, state)
	c, cerr := r.Cookie(name)
	if cerr != nil {
		return pendingLogin{}, because(whyUnknownState, "unknown or replayed state"), false, nil
	}
	aead, err := s.pending.cipher(r.Context(), s.store)
	if err != nil {
		return pendingLogin{}, auditReason{}, true, err
	}
	pl, oerr := openPending(aead, name, c.Value)
	if oerr != nil {
		if fresh := s.pending.stale(r.Context(), s.store); fresh != nil {
			pl, oerr = openPending(fresh, name, c.Value)
		}
	}
	switch {
	case oerr != nil || subtle.ConstantTimeCompare([]byte(pl.State), []byte(state)) != 1:
		return pendingLogin{}, because(whyUnknownState, "unknown or replayed state"), true, nil
	case !s.sameBrowser(r, o, pl):
		return pendingLogin{}, because(whyUnknownState, "unknown or replayed state: started in another browser"), true, nil
	}
	return pl, auditReason{}, true, nil
}

// spendPending records pl's state as used, once the login succeeded at
// the IdP and before a session is made: a state completes one login, even
// when its cookie was copied or a request raced this one.
func (s *Server) spendPending(ctx context.Context, pl pendingLogin) (bool, error) {
	return s.store.Once(ctx, "state:"+pl.State, pendingTTL)
}

// expirePending tells the browser to drop the cookie name.
func (s *Server) expirePending(w http.ResponseWriter, o origin, name string) {
	c := oauth2Cookie(o, name)
	c.MaxAge = -1
	w.Header().Add("Set-Cookie", c.String())
}

// errPendingCookie: a pending-login cookie did not open.
var errPendingCookie = errors.New("broker: pending-login cookie is not valid")

// sealPending encrypts and authenticates pl for the cookie name (the name
// is the additional data, so a value cannot be moved to another cookie).
func sealPending(aead cipher.AEAD, name string, pl pendingLogin) (string, error) {
	plain, err := json.Marshal(pl)
	if err != nil {
		return "", fmt.Errorf("broker: pending login: %w", err)
	}
	nonce := randomBytes(aead.NonceSize())
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// maxPendingCookie bounds what openPending decodes.
const maxPendingCookie = 4 << 10

// openPending is sealPending's inverse.
func openPending(aead cipher.AEAD, name, value string) (pendingLogin, error) {
	if len(value) > maxPendingCookie {
		return pendingLogin{}, errPendingCookie
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < aead.NonceSize()+aead.Overhead() {
		return pendingLogin{}, errPendingCookie
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(name))
	if err != nil {
		return pendingLogin{}, errPendingCookie
	}
	var pl pendingLogin
	if err := json.Unmarshal(plain, &pl); err != nil || pl.State == "" {
		return pendingLogin{}, errPendingCookie
	}
	return pl, nil
}
