// Package pending keeps the sign-ins in progress: what the broker needs
// between /oauth2/start and the callback (the state, nonce and PKCE
// verifier, the provider that started it, and where to go afterwards),
// sealed into a cookie of the browser that started the login and bound to
// that browser, and the single-use mark that spends a login's state.
//
// A login is kept in the browser, not on the server: sealed (AES-256-GCM,
// crypto/cipher) into a cookie of its own that lives as long as the login
// may take, one cookie per login so that parallel tabs never overwrite
// each other. So an anonymous client that starts logins, any number of
// them, makes the broker keep nothing: no session, no Redis key, no
// pub/sub message. The only server-side write of a login, the mark that
// spends its state (Spend), is made once the IdP has accepted the code (or
// the password was right), so only a real login can make one, and it
// expires with the login's ten minutes.
//
// The cookie is bound to its state (the cookie's name is derived from the
// state, and the sealed state must equal the one that comes back) and to
// this browser: it holds the hash of the browser's binding cookie, a random
// value under the __Host- prefix behind https, which no other site, not
// even a sibling subdomain, can set. So a pending-login cookie planted in
// a victim's browser (cookie tossing from a subdomain) does not sign the
// victim in as the attacker. The provider and the time it was made are
// sealed inside it.
package pending

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Login is one sign-in in progress, as its cookie holds it.
type Login struct {
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
	// MaxAge (seconds) and ACRValues (space-separated) are what a step-up
	// asked of the IdP (broker/stepup.go): the callback verifies the ID
	// token against them.
	MaxAge    int64  `json:"ma,omitempty"`
	ACRValues string `json:"a,omitempty"`
}

// Limits on pending logins, and the names of their cookies.
const (
	// TTL is how long a login may take, from its start.
	TTL = 10 * time.Minute
	// MaxCookies bounds the pending-login cookies a browser holds: a start
	// beyond it drops the oldest, so the Cookie header stays small (about
	// 380 bytes each with a short rd).
	MaxCookies = 8
	// MaxBytes bounds their names and values together (a long rd makes a
	// cookie up to 3.5 KB): the oldest go first, so that the Cookie header
	// fits proxies' limits (nginx: 8 KB a header line).
	MaxBytes = 6 << 10
	// CookieInfix is between the session cookie's base name and the
	// state's first characters in a pending-login cookie's name.
	CookieInfix = "_login_"
	// NameChars of the state name its cookie: 72 random bits, so the
	// logins of one browser never share a cookie.
	NameChars = 12
	// SecretName names the store's secret the cookies are sealed with
	// (store.Backend.Secret).
	SecretName = "pending-login"
	// BindingSuffix follows the session cookie's base name in the browser
	// binding cookie's.
	BindingSuffix = "_browser"
)

// Why a callback found no pending login of its state. The broker logs
// them as the audit reason (the texts are the lines' reason).
var (
	ErrNoState      = errors.New("missing state")
	ErrUnknown      = errors.New("unknown or replayed state")
	ErrOtherBrowser = errors.New("unknown or replayed state: started in another browser")
)

// Store is what the pending logins need of the session store: the shared
// secret the cookies are sealed with (the same on every replica, so that a
// login started on one finishes on another), and single-use marks.
type Store interface {
	Secret(ctx context.Context, name string) ([]byte, error)
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Scope is the external origin a request came to, as far as the cookies
// need it: https or not, and the path prefix ("" at the root).
type Scope struct {
	Secure bool
	Prefix string
}

// Cookie is a cookie of the broker's own /oauth2/ paths (it never reaches
// an app): HttpOnly, SameSite=Lax, Secure behind https. name is whole,
// prefix included.
func (sc Scope) Cookie(name string) http.Cookie {
	return http.Cookie{Name: name, Path: sc.Prefix + "/oauth2/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: sc.Secure}
}

// Logins keeps the pending logins of every browser in their cookies. It
// lives as long as the process, across reloads; safe for concurrent use.
type Logins struct {
	base  string // the session cookie's base name
	store Store
	seal  seal
}

// New makes the pending logins whose cookies are named after the session
// cookie's base name and sealed with st's secret.
func New(base string, st Store) *Logins {
	return &Logins{base: base, store: st}
}

// Save sets the cookie of l in the response w to r, bound to this browser
// (its binding cookie, set when it has none). Beyond MaxCookies logins in
// flight in this browser, the oldest cookies are expired; so are cookies
// that do not open (from an earlier key, or damaged). err is a failure of
// the store that keeps the sealing secret.
func (p *Logins) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, sc Scope, l Login) error {
	aead, err := p.seal.cipher(ctx, p.store)
	if err != nil {
		return err
	}
	l.Browser = p.browserBinding(w, r, sc)
	c := p.cookie(sc, l.State)
	if c.Value, err = sealLogin(aead, c.Name, l); err != nil {
		return err
	}
	type held struct {
		name    string
		size    int
		created time.Time
	}
	var others []held
	total := len(c.Name) + len(c.Value)
	prefix := p.cookieName(sc, "")
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, prefix) || len(ck.Name) != len(prefix)+NameChars {
			continue
		}
		if other, err := openLogin(aead, ck.Name, ck.Value); err == nil {
			others = append(others, held{ck.Name, len(ck.Name) + len(ck.Value), other.Created})
			total += len(ck.Name) + len(ck.Value)
			continue
		}
		expire(w, sc, ck.Name)
	}
	slices.SortFunc(others, func(a, b held) int { return a.created.Compare(b.created) })
	for len(others) > 0 && (len(others) >= MaxCookies || total > MaxBytes) {
		expire(w, sc, others[0].name)
		total -= others[0].size
		others = others[1:]
	}
	w.Header().Add("Set-Cookie", c.String())
	return nil
}

// Take finds the pending login of state in this browser's cookies and
// expires its cookie: whatever the callback decides, this login is over.
// err is ErrNoState, ErrUnknown or ErrOtherBrowser when none was found, or
// a failure of the store that keeps the sealing secret.
func (p *Logins) Take(w http.ResponseWriter, r *http.Request, sc Scope, state string) (Login, error) {
	l, found, err := p.find(r, sc, state)
	if found {
		p.Expire(w, sc, state)
	}
	return l, err
}

// Peek finds the pending login of state in this browser's cookies and
// leaves it there (the local login form, which may be posted again after a
// wrong password); err as for Take. It does not check the provider or the
// age: the callers do, with their own messages.
func (p *Logins) Peek(r *http.Request, sc Scope, state string) (Login, error) {
	l, _, err := p.find(r, sc, state)
	return l, err
}

// Expire tells the browser to drop the cookie of the login with state.
func (p *Logins) Expire(w http.ResponseWriter, sc Scope, state string) {
	expire(w, sc, p.cookieName(sc, state))
}

// Spend records l's state as used, once the login succeeded at the IdP
// and before a session is made: a state completes one login, even when its
// cookie was copied or a request raced this one. fresh is false when it
// was spent already.
func (p *Logins) Spend(ctx context.Context, l Login) (fresh bool, err error) {
	key, ttl := SpendMark(l)
	return p.store.Once(ctx, key, ttl)
}

// SpendMark is the single-use mark Spend writes for l (Store.Once's key
// and ttl), for a commit that writes it in the same step as the session
// (session.Manager.IndexOnCommit).
func SpendMark(l Login) (key string, ttl time.Duration) {
	return "state:" + l.State, TTL
}

// find is Peek, and whether the request carried the cookie.
func (p *Logins) find(r *http.Request, sc Scope, state string) (l Login, found bool, err error) {
	if state == "" {
		return Login{}, false, ErrNoState
	}
	name := p.cookieName(sc, state)
	c, cerr := r.Cookie(name)
	if cerr != nil {
		return Login{}, false, ErrUnknown
	}
	aead, err := p.seal.cipher(r.Context(), p.store)
	if err != nil {
		return Login{}, true, err
	}
	l, oerr := openLogin(aead, name, c.Value)
	if oerr != nil {
		if fresh := p.seal.stale(r.Context(), p.store); fresh != nil {
			l, oerr = openLogin(fresh, name, c.Value)
		}
	}
	switch {
	case oerr != nil || subtle.ConstantTimeCompare([]byte(l.State), []byte(state)) != 1:
		return Login{}, true, ErrUnknown
	case !p.sameBrowser(r, sc, l):
		return Login{}, true, ErrOtherBrowser
	}
	return l, true, nil
}

// cookieName is the name of the cookie of the login with state, with the
// __Secure- prefix behind https (not __Host-: the cookie is scoped to the
// broker's /oauth2/ paths).
func (p *Logins) cookieName(sc Scope, state string) string {
	name := p.base + CookieInfix + state[:min(len(state), NameChars)]
	if sc.Secure {
		name = "__Secure-" + name
	}
	return name
}

// cookie is the attributes of a pending-login cookie: HttpOnly,
// SameSite=Lax (the IdP's redirect back is a top-level GET), Secure behind
// https, sent only to the broker's /oauth2/ paths, and expiring with the
// login.
func (p *Logins) cookie(sc Scope, state string) http.Cookie {
	c := sc.Cookie(p.cookieName(sc, state))
	c.MaxAge = int(TTL / time.Second)
	return c
}

// expire tells the browser to drop the cookie name.
func expire(w http.ResponseWriter, sc Scope, name string) {
	c := sc.Cookie(name)
	c.MaxAge = -1
	w.Header().Add("Set-Cookie", c.String())
}

// bindingCookie is the browser binding cookie's attributes: Path=/ and the
// __Host- prefix behind https (a cookie no other host can set), HttpOnly,
// SameSite=Lax, for the browser's session. Its value is random.
func (p *Logins) bindingCookie(sc Scope) http.Cookie {
	c := http.Cookie{Name: p.base + BindingSuffix, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: sc.Secure}
	if c.Secure {
		c.Name = "__Host-" + c.Name
	}
	return c
}

// browserBinding returns the hash of this browser's binding cookie, and
// sets a new cookie when it has none.
func (p *Logins) browserBinding(w http.ResponseWriter, r *http.Request, sc Scope) string {
	c := p.bindingCookie(sc)
	if got, err := r.Cookie(c.Name); err == nil && len(got.Value) == len(randomToken()) {
		return bindingHash(got.Value)
	}
	c.Value = randomToken()
	w.Header().Add("Set-Cookie", c.String())
	return bindingHash(c.Value)
}

// sameBrowser reports whether l was made in the browser of r.
func (p *Logins) sameBrowser(r *http.Request, sc Scope, l Login) bool {
	c, err := r.Cookie(p.bindingCookie(sc).Name)
	return err == nil && l.Browser != "" && subtle.ConstantTimeCompare([]byte(bindingHash(c.Value)), []byte(l.Browser)) == 1
}

func bindingHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomToken returns 32 bytes from crypto/rand, base64url-encoded.
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("pending: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return b
}
