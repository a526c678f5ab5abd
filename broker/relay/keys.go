package relay

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

// signingKey is an assertion signing key: the private key, the algorithm
// its type implies, and its kid, the RFC 7638 JWK thumbprint (SHA-256,
// base64url) of the public key. The kid depends only on the key, so every
// replica that loads the same file names it the same way.
type signingKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

// The assertion signature algorithms, one per key type.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256}

// loadSigningKeys loads every file; problems are reported per file with its
// YAML path (assertion.signing_keys[i]). keys[i] is the zero value where
// loading failed.
func loadSigningKeys(paths []string) (keys []signingKey, errs []error) {
	keys = make([]signingKey, len(paths))
	seen := map[string]int{}
	for i, path := range paths {
		field := fmt.Sprintf("assertion.signing_keys[%d]", i)
		k, err := loadSigningKey(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		if j, dup := seen[k.kid]; dup {
			errs = append(errs, fmt.Errorf("%s: %q is the same key as signing_keys[%d]", field, path, j))
			continue
		}
		seen[k.kid] = i
		keys[i] = k
	}
	return keys, errs
}

// loadSigningKey reads one PEM private key: PKCS#8 ("PRIVATE KEY"), PKCS#1
// ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY", after an optional
// "EC PARAMETERS" block, as openssl ecparam writes it).
func loadSigningKey(path string) (signingKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return signingKey{}, fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	priv, err := parsePrivateKeyPEM(data)
	if err != nil {
		return signingKey{}, fmt.Errorf("%q: %w", path, err)
	}
	return newSigningKey(priv)
}

func parsePrivateKeyPEM(data []byte) (any, error) {
	var found any
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("is encrypted; the broker needs it unencrypted (protect the file instead)")
		default:
			continue // EC PARAMETERS, certificates, public keys
		}
		if err != nil {
			return nil, fmt.Errorf("is not a valid %s: %w", b.Type, err)
		}
		if found != nil {
			return nil, errors.New("holds more than one private key; use one file per key")
		}
		found = key
	}
	if found == nil {
		return nil, errors.New("holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
	}
	return found, nil
}

// newSigningKey checks that priv is a key of an assertion algorithm and
// names it.
func newSigningKey(priv any) (signingKey, error) {
	k := signingKey{}
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return k, fmt.Errorf("is an ECDSA key on %s; only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		k.priv, k.alg = p, jose.ES256
	case ed25519.PrivateKey:
		k.priv, k.alg = p, jose.EdDSA
	case *rsa.PrivateKey:
		if p.N.BitLen() < 2048 {
			return k, fmt.Errorf("is a %d-bit RSA key; at least 2048 bits are required", p.N.BitLen())
		}
		k.priv, k.alg = p, jose.RS256
	default:
		return k, fmt.Errorf("is a %T; use ECDSA P-256, Ed25519 or RSA", priv)
	}
	kid, err := thumbprint(k.priv.Public())
	if err != nil {
		return k, err
	}
	k.kid = kid
	return k, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of a public key, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("cannot compute the key's thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// generateSigningKey makes a key for alg, kept in memory only.
func generateSigningKey(alg jose.SignatureAlgorithm) (signingKey, error) {
	var priv any
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("broker: generating an assertion signing key: %w", err)
	}
	return newSigningKey(priv)
}

// jwk is the key as a private JWK (for the signer, which then puts the kid
// in the JWS header).
func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}
