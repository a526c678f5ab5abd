package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is one fetched key set, immutable once published.
type keySet struct {
	keys    map[string]jose.JSONWebKey // by kid
	fetched time.Time
	maxAge  time.Duration
	etag    string
}

func (ks *keySet) fresh(now time.Time) bool { return now.Before(ks.fetched.Add(ks.maxAge)) }

// maxKeySetSize bounds the key set response read.
const maxKeySetSize = 1 << 20

// key returns the verification key named kid, fetching the key set when kid
// is unknown or the cache is stale (rate-limited by MinRefreshInterval).
func (v *Verifier) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	ks := v.keys.Load()
	k, known := ks.keys[kid]
	if known && ks.fresh(v.cfg.Now()) {
		return k, nil
	}
	if known {
		if !v.mu.TryLock() {
			return k, nil // stale, and another request is refreshing it: use it meanwhile
		}
	} else {
		v.mu.Lock() // wait for a refresh in progress: it may bring the key
	}
	ks, err := v.refreshLocked(ctx, ks)
	v.mu.Unlock()
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("assertion: unknown key %q, and the key set could not be fetched: %w", kid, err)
	}
	return jose.JSONWebKey{}, fmt.Errorf("assertion: unknown key %q", kid)
}

// refreshLocked fetches the key set unless another caller replaced seen
// since it was loaded, or the last fetch was less than MinRefreshInterval
// ago. It returns the key set to use (the old one when a fetch failed) and
// the fetch's error.
func (v *Verifier) refreshLocked(ctx context.Context, seen *keySet) (*keySet, error) {
	cur := v.keys.Load()
	if cur != seen {
		return cur, nil
	}
	if v.cfg.Now().Sub(v.lastAttempt) < v.cfg.MinRefreshInterval {
		return cur, nil
	}
	ks, err := v.fetchLocked(ctx, cur)
	if err != nil {
		return cur, err
	}
	return ks, nil
}

// fetchLocked GETs the key set (conditionally, when cur has an ETag) and
// publishes it. Keys of other types, other uses, without kid, or that do
// not parse are skipped, so one odd key does not break the others.
func (v *Verifier) fetchLocked(ctx context.Context, cur *keySet) (*keySet, error) {
	now := v.cfg.Now()
	v.lastAttempt = now
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if cur != nil && cur.etag != "" {
		req.Header.Set("If-None-Match", cur.etag)
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	defer resp.Body.Close()
	maxAge := cacheMaxAge(resp.Header.Get("Cache-Control"), v.cfg.MinRefreshInterval)
	if resp.StatusCode == http.StatusNotModified && cur != nil {
		ks := &keySet{keys: cur.keys, fetched: now, maxAge: maxAge, etag: cur.etag}
		v.keys.Store(ks)
		return ks, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("assertion: key set %s: status %d", v.cfg.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetSize+1))
	if err != nil {
		return nil, fmt.Errorf("assertion: key set: %w", err)
	}
	if len(body) > maxKeySetSize {
		return nil, fmt.Errorf("assertion: key set %s is larger than %d bytes", v.cfg.JWKSURL, maxKeySetSize)
	}
	keys, err := parseKeySet(body)
	if err != nil {
		return nil, fmt.Errorf("assertion: key set %s: %w", v.cfg.JWKSURL, err)
	}
	ks := &keySet{keys: keys, fetched: now, maxAge: maxAge, etag: resp.Header.Get("ETag")}
	v.keys.Store(ks)
	return ks, nil
}

// parseKeySet reads a JWK Set (RFC 7517 §5) and keeps the usable signature
// verification keys by kid.
func parseKeySet(body []byte) (map[string]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	if raw.Keys == nil {
		return nil, errors.New(`no "keys" member`)
	}
	keys := make(map[string]jose.JSONWebKey, len(raw.Keys))
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || k.KeyID == "" || (k.Use != "" && k.Use != "sig") || !usableKey(k.Key) {
			continue
		}
		if _, dup := keys[k.KeyID]; dup {
			continue // ambiguous: the first one wins
		}
		keys[k.KeyID] = k
	}
	return keys, nil
}

// usableKey accepts the public keys of the accepted algorithms: ECDSA
// P-256, Ed25519 and RSA of at least 2048 bits.
func usableKey(k any) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048
	}
	return false
}

// cacheMaxAge reads max-age from a Cache-Control header, bounded below by
// floor and above by one day; DefaultKeySetMaxAge when absent, and no
// caching (floor) with no-cache or no-store.
func cacheMaxAge(cc string, floor time.Duration) time.Duration {
	age := DefaultKeySetMaxAge
	for part := range strings.SplitSeq(cc, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return floor
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil && n >= 0 {
				age = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(age, floor), 24*time.Hour)
}
