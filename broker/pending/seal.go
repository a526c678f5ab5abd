package pending

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
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
	plain, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("pending: pending login: %w", err)
	}
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
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(name))
	if err != nil {
		return Login{}, errCookie
	}
	var l Login
	if err := json.Unmarshal(plain, &l); err != nil || l.State == "" {
		return Login{}, errCookie
	}
	return l, nil
}
