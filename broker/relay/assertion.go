package relay

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oidc-broker/oidc-broker/assertion"
	"github.com/oidc-broker/oidc-broker/providers"
)

// AssertionConfig configures the signed identity assertion: a short-lived
// JWT, signed with the broker's keys, that carries the identity to apps in a
// request header next to the X-Auth-Request-* headers. An app that checks it
// (package assertion, or any JWT library against /oauth2/jwks) need not
// trust the network between itself and the broker. docs/assertion.md
// describes it.
type AssertionConfig struct {
	// Enabled turns the assertion on. Default false: an assertion is a
	// credential that the app receiving it could present to another app
	// accepting the same audience, so it is sent only when asked for.
	Enabled bool `yaml:"enabled"`
	// Header is the request header (and forward-auth response header) that
	// carries it. Default assertion.DefaultHeader, X-Auth-Request-Assertion.
	// Client-sent headers of this name are always removed.
	Header string `yaml:"header"`
	// Algorithm is ES256, EdDSA or RS256. Default: the first signing key's
	// (ES256 when a key is generated). It must match that key's type.
	Algorithm string `yaml:"algorithm"`
	// Lifetime is how long an assertion is valid: 30s to 5m, default 5m.
	Lifetime time.Duration `yaml:"lifetime"`
	// Audience is the "aud" claim. Default: upstream, as written there, or
	// "oidc-broker" without one. A relay for a particular upstream may set
	// its own.
	Audience string `yaml:"audience"`
	// SigningKeys are PEM private key files. The first signs; all are
	// published at /oauth2/jwks. None: a key is generated at start (and
	// replicas then disagree).
	SigningKeys []string `yaml:"signing_keys"`
}

// Assertion defaults and bounds.
const (
	DefaultAssertionLifetime = 5 * time.Minute
	DefaultAssertionAudience = "oidc-broker"
	minAssertionLifetime     = 30 * time.Second
	// jwksMaxAge is the key set's Cache-Control max-age: an old key must
	// stay published at least this long plus the lifetime after it stopped
	// signing.
	jwksMaxAge = 5 * time.Minute
	// maxCachedAssertions bounds the signed-token cache (about 1.5 KB
	// each); past it, entries are dropped and re-signed when needed.
	maxCachedAssertions = 10000
)

// Problems validates the assertion block; each error starts with its YAML
// path. Signing keys are loaded here, so that `oidc-broker check` reports
// an unreadable or mismatched key.
func (c AssertionConfig) Problems() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("assertion.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Header != "" {
		if msg := assertionHeaderProblem(c.Header); msg != "" {
			add("header", "%q %s", c.Header, msg)
		}
	}
	if c.Algorithm != "" && !slices.Contains(assertionAlgs, jose.SignatureAlgorithm(c.Algorithm)) {
		add("algorithm", "%q is not one of ES256, EdDSA, RS256", c.Algorithm)
	}
	if c.Lifetime != 0 && (c.Lifetime < minAssertionLifetime || c.Lifetime > DefaultAssertionLifetime) {
		add("lifetime", "%s must be between %s and %s", c.Lifetime, minAssertionLifetime, DefaultAssertionLifetime)
	}
	if c.Audience != "" && strings.IndexFunc(c.Audience, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		add("audience", "must not contain control characters")
	}
	keys, kerrs := loadSigningKeys(c.SigningKeys)
	errs = append(errs, kerrs...)
	if len(keys) > 0 && keys[0].priv != nil && c.Algorithm != "" && string(keys[0].alg) != c.Algorithm {
		add("algorithm", "%s does not match signing_keys[0], a %s key", c.Algorithm, keys[0].alg)
	}
	return errs
}

// reservedHeaders may not carry the assertion: they mean something else to
// the broker, proxies or apps.
var reservedHeaders = []string{"Authorization", "Connection", "Content-Length", "Content-Type", "Cookie", "Forwarded",
	"Host", "Keep-Alive", "Proxy-Authorization", "Set-Cookie", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	HeaderUser, HeaderEmail, HeaderPreferredUsername, HeaderGroups, HeaderProvider, HeaderName, HeaderGroupsIncomplete}

// assertionHeaderProblem says what is wrong with a header name, or "".
func assertionHeaderProblem(name string) string {
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "must be letters, digits and '-' (proxies drop or fold other characters, '_' above all)"
		}
	}
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return "is used for something else"
		}
	}
	if len(name) >= len("X-Forwarded-") && strings.EqualFold(name[:len("X-Forwarded-")], "X-Forwarded-") {
		return "is used for something else"
	}
	return ""
}

// Signer makes the assertions: one signer, the published key set, and a
// cache of signed tokens. It is safe for concurrent use.
type Signer struct {
	header   string
	lifetime time.Duration
	audience string // when the relay names none
	kid      string
	signer   jose.Signer
	jwks     []byte // the public key set, served as is
	etag     string
	now      func() time.Time

	mu    sync.RWMutex
	cache map[assertionKey]*cachedAssertion
	swept time.Time
}

// assertionKey names one cache entry: one user for one issuer and
// audience. The entry is used only while it states what the identity says.
type assertionKey struct{ iss, aud, provider, subject string }

type cachedAssertion struct {
	token   string
	claims  assertion.Claims
	renewAt time.Time // sign anew from here on: a third of the lifetime left
	expires time.Time
}

// NewSigner loads (or generates) the keys of a validated configuration.
// upstream is the configuration's upstream URL, the default audience; ""
// without one. It returns nil when the assertion is off.
func NewSigner(ac AssertionConfig, upstream string, now func() time.Time, log *slog.Logger) (*Signer, error) {
	if !ac.Enabled {
		return nil, nil
	}
	a := &Signer{header: ac.Header, lifetime: ac.Lifetime, audience: ac.Audience, now: now,
		cache: map[assertionKey]*cachedAssertion{}}
	if a.header == "" {
		a.header = assertion.DefaultHeader
	}
	if a.lifetime == 0 {
		a.lifetime = DefaultAssertionLifetime
	}
	if a.audience == "" {
		a.audience = cmp.Or(upstream, DefaultAssertionAudience)
	}
	keys, errs := loadSigningKeys(ac.SigningKeys)
	if len(errs) > 0 {
		return nil, fmt.Errorf("relay: %w", errs[0])
	}
	if len(keys) == 0 {
		k, err := generateSigningKey(jose.SignatureAlgorithm(cmp.Or(ac.Algorithm, string(jose.ES256))))
		if err != nil {
			return nil, err
		}
		keys = []signingKey{k}
		log.Warn("assertion: no signing_keys configured, so a key was generated for this process only: "+
			"replicas need shared signing_keys, and apps see a new key after every restart", "kid", k.kid, "algorithm", k.alg)
	}
	first := keys[0].jwk()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: keys[0].alg, Key: first}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("relay: assertion signer: %w", err)
	}
	a.signer, a.kid = signer, keys[0].kid
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		jwk := k.jwk()
		set.Keys = append(set.Keys, jwk.Public())
	}
	if a.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("relay: assertion key set: %w", err)
	}
	sum := sha256.Sum256(a.jwks)
	a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	log.Info("signed identity assertion enabled", "header", a.header, "kid", a.kid, "algorithm", keys[0].alg,
		"published_keys", len(keys), "default_audience", a.audience, "lifetime", a.lifetime)
	return a, nil
}

// Token returns the assertion of id for the issuer iss and the audience
// aud (the configured default when empty). A token is signed once per
// user, issuer and audience, and handed out again (to every session of
// that user) until a third of its lifetime is left or the identity it
// states changes. It is kept in memory, never in the session, so relaying
// never writes the session.
func (a *Signer) Token(iss, aud string, id providers.Identity) (string, error) {
	if aud == "" {
		aud = a.audience
	}
	now := a.now()
	key := assertionKey{iss: iss, aud: aud, provider: id.Provider, subject: id.Subject}
	a.mu.RLock()
	e := a.cache[key]
	a.mu.RUnlock()
	if e != nil && now.Before(e.renewAt) && sameIdentity(&e.claims, id) {
		return e.token, nil
	}
	iat := now.Truncate(time.Second)
	c := assertion.Claims{Issuer: iss, Audience: []string{aud}, User: id.User(), Provider: id.Provider,
		Email: id.VerifiedEmail(), Name: id.Name, PreferredUsername: id.PreferredUsername, Groups: id.Groups,
		GroupsIncomplete: id.GroupsIncomplete, IssuedAt: iat, Expiry: iat.Add(a.lifetime)}
	tok, err := jwt.Signed(a.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("relay: signing the assertion: %w", err)
	}
	a.store(key, &cachedAssertion{token: tok, claims: c, renewAt: c.Expiry.Add(-a.lifetime / 3), expires: c.Expiry}, now)
	return tok, nil
}

// sameIdentity reports whether c states what id says (the cache key already
// fixes provider and subject).
func sameIdentity(c *assertion.Claims, id providers.Identity) bool {
	return c.Email == id.VerifiedEmail() && c.Name == id.Name && c.PreferredUsername == id.PreferredUsername &&
		c.GroupsIncomplete == id.GroupsIncomplete && slices.Equal(c.Groups, id.Groups)
}

// store caches e. Expired entries are swept once per lifetime; a full cache
// drops arbitrary entries (they are signed again when needed).
func (a *Signer) store(key assertionKey, e *cachedAssertion, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.swept) > a.lifetime || len(a.cache) >= maxCachedAssertions {
		a.swept = now
		for k, old := range a.cache {
			if !now.Before(old.expires) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < maxCachedAssertions*9/10 {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = e
}

// Header is the request header (and forward-auth response header) that
// carries the assertion.
func (a *Signer) Header() string { return a.header }

// ServeJWKS serves the public signing keys as a JWK Set (RFC 7517 §5). The
// set changes only with the configuration, so it is cacheable (max-age,
// ETag).
func (a *Signer) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Del("Vary") // the keys do not depend on the session cookie
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(jwksMaxAge/time.Second)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.jwks))
}
