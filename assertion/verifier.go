package assertion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of Config.
const (
	// DefaultLeeway is the clock skew tolerated on exp, iat and nbf.
	DefaultLeeway = 30 * time.Second
	// DefaultMinRefreshInterval is the least time between two fetches of
	// the key set.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultKeySetMaxAge is how long fetched keys are used before they are
	// fetched again, when the key set's response has no Cache-Control
	// max-age. The broker sends max-age=300.
	DefaultKeySetMaxAge = 5 * time.Minute
)

// Algorithms are the signature algorithms a Verifier accepts: asymmetric
// ones only. "none" and the HMAC algorithms (HS256…) are always refused, so
// nobody can sign with a public key or with no key at all.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// Config says which assertions a Verifier accepts. JWKSURL, Issuer and
// Audience are required: verification fails closed.
type Config struct {
	// JWKSURL is the broker's key set, <issuer>/oauth2/jwks (or
	// <issuer>/.well-known/jwks.json).
	JWKSURL string
	// Issuer is the broker's public base URL, compared exactly with "iss"
	// (https://auth.example.com, or https://example.com/auth under a path
	// prefix).
	Issuer string
	// Audience is this app's name at the broker: "aud" must contain it.
	// It is the upstream's assertion audience in the broker's configuration
	// (by default the upstream URL).
	Audience string
	// HTTPClient fetches the key set. Default: a client with a 10-second
	// timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, iat and nbf. Zero means
	// DefaultLeeway; it must not exceed one minute.
	Leeway time.Duration
	// MinRefreshInterval is the least time between two fetches of the key
	// set, so that tokens with made-up key ids cannot make the app hammer
	// the broker. Zero means DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// Logger receives, from Middleware, the reason each refused request
	// was refused (at level Info). Nil logs nothing.
	Logger *slog.Logger
}

// Verifier checks assertions against the broker's key set. It is safe for
// concurrent use; build it once with NewVerifier.
//
// The key set is fetched by NewVerifier and cached. It is fetched again when
// a token names a key id that is not in the cache (a key was added: the
// broker's keys were rotated) and when the cache is older than the key set
// response's Cache-Control max-age (a key was removed), but never more
// often than once per MinRefreshInterval. If a refresh fails, the cached
// keys keep working until a later refresh succeeds.
type Verifier struct {
	cfg  Config
	keys atomic.Pointer[keySet]

	mu          sync.Mutex // serializes fetches
	lastAttempt time.Time  // of a fetch; under mu
}

// NewVerifier checks cfg and fetches the key set once, so that a wrong URL
// fails when the app starts rather than at its first request. ctx bounds
// that fetch only.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	var errs []error
	if cfg.JWKSURL == "" {
		errs = append(errs, errors.New("assertion: Config.JWKSURL is required"))
	}
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("assertion: Config.Issuer is required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("assertion: Config.Audience is required"))
	}
	if cfg.Leeway < 0 || cfg.Leeway > time.Minute {
		errs = append(errs, errors.New("assertion: Config.Leeway must be between 0 and one minute"))
	}
	if cfg.MinRefreshInterval < 0 {
		errs = append(errs, errors.New("assertion: Config.MinRefreshInterval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	v := &Verifier{cfg: cfg}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.fetchLocked(ctx, nil); err != nil {
		return nil, err
	}
	return v, nil
}

// Verify checks a compact-serialized assertion and returns its claims: the
// signature, by a key of the broker's key set named by the token's "kid",
// with ES256, EdDSA or RS256 only; "iss" equal to Config.Issuer; "aud"
// containing Config.Audience; "exp" present and not past; "iat" and "nbf",
// when present, not in the future (each time with Config.Leeway); "sub"
// present. ctx bounds a key set fetch, if one is needed.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("assertion: not a signed JWT with an accepted algorithm: %w", err)
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return nil, errors.New("assertion: the token names no key (kid)")
	}
	key, err := v.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("assertion: key %q is for %s, the token says %s", h.KeyID, key.Algorithm, h.Algorithm)
	}
	var c Claims
	var std jwt.Claims
	if err := tok.Claims(key.Key, &c, &std); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	if std.Expiry == nil {
		return nil, errors.New("assertion: exp is missing")
	}
	if std.Subject == "" {
		return nil, errors.New("assertion: sub is missing")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience},
		Time: v.cfg.Now()}, v.cfg.Leeway); err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	return &c, nil
}

// Middleware returns middleware that verifies the assertion in the request
// header named header (DefaultHeader when empty) and puts its claims into
// the request's context for FromContext. A request without a valid
// assertion gets 401 and does not reach next; the reason goes to
// Config.Logger, never to the client.
func (v *Verifier) Middleware(header string) func(http.Handler) http.Handler {
	if header == "" {
		header = DefaultHeader
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := r.Header.Get(header)
			var err error
			var c *Claims
			if token == "" {
				err = fmt.Errorf("assertion: no %s header", header)
			} else {
				c, err = v.Verify(r.Context(), token)
			}
			if err != nil {
				if v.cfg.Logger != nil {
					v.cfg.Logger.Info("request refused", "error", err, "method", r.Method, "path", r.URL.Path)
				}
				w.Header().Set("Cache-Control", "no-store")
				http.Error(w, "401 Unauthorized: this app must be reached through its sign-in service", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
		})
	}
}

// Optional returns middleware like Middleware for apps with public pages:
// a request without the header reaches next anonymously (FromContext
// reports no identity), one with an assertion that is not valid gets 401.
// Nobody can pass for a user without a valid assertion, and public pages
// need none.
func (v *Verifier) Optional(header string) func(http.Handler) http.Handler {
	if header == "" {
		header = DefaultHeader
	}
	strict := v.Middleware(header)
	return func(next http.Handler) http.Handler {
		checked := strict(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, present := r.Header[http.CanonicalHeaderKey(header)]; !present {
				next.ServeHTTP(w, r)
				return
			}
			checked.ServeHTTP(w, r)
		})
	}
}

type claimsKey struct{}

// NewContext returns ctx carrying c, for FromContext and Require: what
// Middleware does with the claims it verified, and what an app that reads
// FromHeaders does with the claims it read.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims Middleware verified for this request.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}
