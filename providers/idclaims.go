package providers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// idClaims is an ID token's claims as zitadel's verifier
// (rp.VerifyIDToken, through rp.CodeExchange and rp.VerifyTokens) and the
// broker read them: the claims the verifier checks and the broker uses,
// typed, and every claim in a map for the mapping.
//
// It exists for speed. zitadel's oidc.IDTokenClaims decodes the payload
// twice (into its struct and into its map), and once more for each of aud,
// exp, iat, auth_time, nbf and amr; that was about 5% of a login's CPU. This
// type decodes it once, into the map, and reads its typed fields from the
// map with oidc.IDTokenClaims's rules (TestIDClaimsMatchZitadel and
// FuzzIDClaims compare the two):
//
//   - a string claim must be a JSON string or null (null reads as "");
//   - a time (exp, iat, auth_time) a number of seconds, truncated, an
//     RFC 3339 string, or null (0, no time);
//   - aud a string or an array of strings; any other value reads as no
//     audience, which the verifier's audience check refuses.
//
// A wrong type in one of these fails the decoding, and with it the token.
// What differs from oidc.IDTokenClaims:
//
//   - A claim's name must match exactly, and of a repeated name the last
//     value counts (as in the map). encoding/json's struct decoding also
//     matched "Sub", "SUB" or "ſub", and let a later null keep an earlier
//     value, so the verifier could check one subject, audience or nonce
//     and the mapping (which reads the map) use another. Now both read the
//     exact name, and a variant is only another claim.
//   - A time beyond ±2^53 seconds (285 million years) is refused: Go's
//     conversion of such a float to an integer is the CPU's, not defined.
//   - Claims the broker does not read into fields (address, amr, act,
//     updated_at, email_verified, …) are not type-checked, so a token is
//     no longer refused for one of them: looser. The mapping reads them
//     from the map with its own rules (an email is verified only for true
//     or the string "true" in any case: mapping.go's isTrue).
type idClaims struct {
	claims map[string]any
	alg    jose.SignatureAlgorithm

	issuer, subject, nonce, acr, azp string
	atHash, cHash, sid               string
	audience                         []string
	exp, iat, authTime               oidc.Time
}

var _ oidc.IDClaims = (*idClaims)(nil)

// UnmarshalJSON decodes an ID token's payload (a JSON object) once.
func (c *idClaims) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("id token claims: %w", err)
	}
	c.claims = m
	strs := [...]struct {
		name string
		dst  *string
	}{
		{"iss", &c.issuer}, {"sub", &c.subject}, {"nonce", &c.nonce}, {"acr", &c.acr},
		{"azp", &c.azp}, {"at_hash", &c.atHash}, {"c_hash", &c.cHash}, {"sid", &c.sid},
	}
	for _, s := range strs {
		switch v := m[s.name].(type) {
		case string:
			*s.dst = v
		case nil:
		default:
			return fmt.Errorf("id token claims: %s: a %s, not a string", s.name, jsonType(v))
		}
	}
	times := [...]struct {
		name string
		dst  *oidc.Time
	}{{"exp", &c.exp}, {"iat", &c.iat}, {"auth_time", &c.authTime}}
	for _, t := range times {
		switch v := m[t.name].(type) {
		case float64:
			if v < -maxTime || v > maxTime {
				return fmt.Errorf("id token claims: %s: %g is out of range", t.name, v)
			}
			*t.dst = oidc.Time(v)
		case string:
			tt, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("id token claims: %s: %w", t.name, err)
			}
			*t.dst = oidc.FromTime(tt)
		case nil:
		default:
			return fmt.Errorf("id token claims: %s: a %s, not a time", t.name, jsonType(v))
		}
	}
	switch aud := m["aud"].(type) {
	case string:
		c.audience = []string{aud}
	case []any:
		c.audience = make([]string, len(aud))
		for i, a := range aud {
			s, ok := a.(string)
			if !ok {
				return fmt.Errorf("id token claims: aud: a %s in the array, not a string", jsonType(a))
			}
			c.audience[i] = s
		}
	}
	return nil
}

// maxTime bounds a time claim, in seconds: 2^53, where float64 still
// holds every integer.
const maxTime = 1 << 53

// jsonType names a decoded JSON value's type for an error.
func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// or reads c, or no claims for a nil c: a payload of JSON null decodes to
// a nil *idClaims, and the verifier's first check (a subject) then fails
// instead of panicking.
func (c *idClaims) or() *idClaims {
	if c == nil {
		return &idClaims{}
	}
	return c
}

func (c *idClaims) GetIssuer() string                              { return c.or().issuer }
func (c *idClaims) GetSubject() string                             { return c.or().subject }
func (c *idClaims) GetAudience() []string                          { return c.or().audience }
func (c *idClaims) GetExpiration() time.Time                       { return c.or().exp.AsTime() }
func (c *idClaims) GetIssuedAt() time.Time                         { return c.or().iat.AsTime() }
func (c *idClaims) GetNonce() string                               { return c.or().nonce }
func (c *idClaims) GetAuthenticationContextClassReference() string { return c.or().acr }
func (c *idClaims) GetAuthTime() time.Time                         { return c.or().authTime.AsTime() }
func (c *idClaims) GetAuthorizedParty() string                     { return c.or().azp }
func (c *idClaims) GetSignatureAlgorithm() jose.SignatureAlgorithm { return c.or().alg }
func (c *idClaims) GetAccessTokenHash() string                     { return c.or().atHash }

// SetSignatureAlgorithm records the JWS's algorithm (the verifier calls it
// once the signature is checked); at_hash and c_hash are hashed with it.
func (c *idClaims) SetSignatureAlgorithm(alg jose.SignatureAlgorithm) {
	if c != nil {
		c.alg = alg
	}
}
