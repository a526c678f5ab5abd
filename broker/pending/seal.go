package pending

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// secretRecheck is how often, at most, a cookie that does not open makes
// the broker read the sealing secret again (it may have been made anew, if
// Redis lost it).
const secretRecheck = time.Minute

// seal seals and opens pending-login cookies with the AEAD made from the
// store's shared secret (so that a login started on one replica finishes
// on another). It asks the store once; a failure is not kept, the next
// login asks again. When a cookie does not open, it asks again at most
// once per secretRecheck (stale), so that replicas follow a secret made
// anew after Redis lost it.
type seal struct {
	mu      sync.Mutex
	aead    cipher.AEAD
	checked time.Time
}

// cipher returns the AEAD, asking st for the secret on first use.
func (p *seal) cipher(ctx context.Context, st Store) (cipher.AEAD, error) {
	p.mu.Lock()
	aead := p.aead
	p.mu.Unlock()
	if aead != nil {
		return aead, nil
	}
	return p.load(ctx, st, time.Now())
}

// load reads the secret and makes the AEAD.
func (p *seal) load(ctx context.Context, st Store, now time.Time) (cipher.AEAD, error) {
	key, err := st.Secret(ctx, SecretName)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pending: pending-login secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pending: pending-login secret: %w", err)
	}
	p.mu.Lock()
	p.aead, p.checked = aead, now
	p.mu.Unlock()
	return aead, nil
}

// stale returns a fresh AEAD when the secret may have changed since it was
// last read (at most once per secretRecheck), or nil.
func (p *seal) stale(ctx context.Context, st Store) cipher.AEAD {
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

// errCookie: a pending-login cookie did not open.
var errCookie = errors.New("pending: pending-login cookie is not valid")

// sealLogin encrypts and authenticates l for the cookie name (the name is
// the additional data, so a value cannot be moved to another cookie).
func sealLogin(aead cipher.AEAD, name string, l Login) (string, error) {
	plain := packLogin(l)
	nonce := randomBytes(aead.NonceSize())
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// maxCookie bounds what openLogin decodes.
const maxCookie = 4 << 10

// openLogin is sealLogin's inverse.
func openLogin(aead cipher.AEAD, name, value string) (Login, error) {
	if len(value) > maxCookie {
		return Login{}, errCookie
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < aead.NonceSize()+aead.Overhead() {
		return Login{}, errCookie
	}
	plain, err := aead.Open(b[aead.NonceSize():aead.NonceSize()], b[:aead.NonceSize()], b[aead.NonceSize():], []byte(name))
	if err != nil {
		return Login{}, errCookie
	}
	l, ok := unpackLogin(plain)
	if !ok || l.State == "" {
		return Login{}, errCookie
	}
	return l, nil
}

// loginV1 is the first byte of a login as packLogin writes it. Cookies
// sealed before it held JSON, which starts with '{': unpackLogin still
// reads those, for the logins in flight when the broker is upgraded (they
// live ten minutes).
const loginV1 = 1

// packLogin is l as a cookie's plaintext: loginV1, then l's strings, each
// a uvarint length and its bytes (State, Provider, Nonce, Verifier,
// RedirectURI, RD, Browser, ACRValues), Created in Unix nanoseconds and
// MaxAge as varints, and a last byte for Remember (0 or 1). Encoding JSON
// cost a login a fifth of its pending-login work, and the cookie about 60
// bytes (docs/performance.md, "Logins").
func packLogin(l Login) []byte {
	strs := [...]string{l.State, l.Provider, l.Nonce, l.Verifier, l.RedirectURI, l.RD, l.Browser, l.ACRValues}
	n := 1 + 2*binary.MaxVarintLen64 + 1
	for _, s := range strs {
		n += binary.MaxVarintLen16 + len(s)
	}
	b := make([]byte, 1, n)
	b[0] = loginV1
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, l.Created.UnixNano())
	b = binary.AppendVarint(b, l.MaxAge)
	var remember byte
	if l.Remember {
		remember = 1
	}
	return append(b, remember)
}

// unpackLogin is packLogin's inverse; ok is false for anything packLogin
// does not write (or a JSON login that does not decode).
func unpackLogin(b []byte) (l Login, ok bool) {
	if len(b) > 0 && b[0] == '{' {
		return l, json.Unmarshal(b, &l) == nil
	}
	if len(b) == 0 || b[0] != loginV1 {
		return l, false
	}
	b = b[1:]
	for _, s := range [...]*string{&l.State, &l.Provider, &l.Nonce, &l.Verifier, &l.RedirectURI, &l.RD, &l.Browser, &l.ACRValues} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Login{}, false
		}
		*s, b = string(b[k:k+int(n)]), b[k+int(n):]
	}
	created, k := binary.Varint(b)
	if k <= 0 {
		return Login{}, false
	}
	b = b[k:]
	if l.MaxAge, k = binary.Varint(b); k <= 0 || len(b) != k+1 || b[k] > 1 {
		return Login{}, false
	}
	l.Created, l.Remember = time.Unix(0, created).UTC(), b[k] == 1
	return l, true
}
