package providers

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// idClaimsPayload is a typical ID token's payload (the demo IdP's, with a
// few more claims).
const idClaimsPayload = `{"iss":"https://idp.example","sub":"248289761001","aud":["broker","other"],` +
	`"exp":1765000000,"iat":1764990000.9,"auth_time":1764989000,"nonce":"n-0S6_WzA2Mj","acr":"urn:mace:incommon:iap:silver",` +
	`"azp":"broker","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","c_hash":"LDktKdoQak3Pk0cnXxCltA","sid":"08a5019c",` +
	`"email":"janedoe@example.com","email_verified":true,"name":"Jane Doe","groups":["admins","staff"],` +
	`"address":{"country":"DE"},"amr":["pwd","mfa"],"updated_at":1764980000}`

// decodeBoth decodes payload as ParseToken does, into zitadel's
// oidc.IDTokenClaims and into idClaims.
func decodeBoth(payload []byte) (z *oidc.IDTokenClaims, errZ error, c *idClaims, errC error) {
	errZ = json.Unmarshal(payload, &z)
	errC = json.Unmarshal(payload, &c)
	return z, errZ, c, errC
}

// sameClaims reports how c differs from z, "" when it does not.
func sameClaims(z *oidc.IDTokenClaims, c *idClaims) string {
	if z == nil || c == nil {
		if (z == nil) != (c == nil) {
			return "one is nil"
		}
		return ""
	}
	var diffs []string
	str := func(name, a, b string) {
		if a != b {
			diffs = append(diffs, name+": "+a+" != "+b)
		}
	}
	str("iss", z.GetIssuer(), c.GetIssuer())
	str("sub", z.GetSubject(), c.GetSubject())
	str("nonce", z.GetNonce(), c.GetNonce())
	str("acr", z.GetAuthenticationContextClassReference(), c.GetAuthenticationContextClassReference())
	str("azp", z.GetAuthorizedParty(), c.GetAuthorizedParty())
	str("at_hash", z.GetAccessTokenHash(), c.GetAccessTokenHash())
	str("c_hash", z.CodeHash, c.cHash)
	str("sid", z.SessionID, c.sid)
	if !slices.Equal(z.GetAudience(), c.GetAudience()) {
		diffs = append(diffs, "aud")
	}
	if !z.GetExpiration().Equal(c.GetExpiration()) || z.Expiration != c.exp {
		diffs = append(diffs, "exp")
	}
	if !z.GetIssuedAt().Equal(c.GetIssuedAt()) || z.IssuedAt != c.iat {
		diffs = append(diffs, "iat")
	}
	if !z.GetAuthTime().Equal(c.GetAuthTime()) || z.AuthTime != c.authTime {
		diffs = append(diffs, "auth_time")
	}
	if !reflect.DeepEqual(z.Claims, c.claims) {
		diffs = append(diffs, "the claims map")
	}
	return strings.Join(diffs, "; ")
}

// typedNames are the claims idClaims reads into fields.
var typedNames = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "azp", "at_hash", "c_hash", "sid"}

// comparable says whether zitadel's struct decoding and the map agree on
// what payload says, so that the two types must too: a JSON object without
// a repeated name and without a name that is one of typedNames in another
// case (encoding/json's struct decoding matches names case-insensitively
// and lets a later null keep an earlier value; a map does neither).
func comparable(payload []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return true // not an object: both refuse it (or both read null)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		name, _ := tok.(string)
		folded := strings.ToLower(name)
		if seen[folded] {
			return false
		}
		seen[folded] = true
		for _, n := range typedNames {
			if strings.EqualFold(name, n) && name != n {
				return false
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return true
		}
	}
	return true
}

// checkIDClaims is the property TestIDClaimsMatchZitadel and FuzzIDClaims
// hold idClaims to: it refuses a payload only when zitadel's type does too,
// and where both accept one (and comparable says they read the same), they
// read the same claims.
func checkIDClaims(t *testing.T, payload []byte) {
	t.Helper()
	z, errZ, c, errC := decodeBoth(payload)
	if errC != nil && errZ == nil {
		t.Fatalf("%s: refused (%v), accepted by oidc.IDTokenClaims", payload, errC)
	}
	if errC == nil && errZ == nil && comparable(payload) {
		if d := sameClaims(z, c); d != "" {
			t.Fatalf("%s: differs from oidc.IDTokenClaims: %s", payload, d)
		}
	}
}

func TestIDClaimsMatchZitadel(t *testing.T) {
	cases := []struct {
		payload string
		refused bool // by both
	}{
		{payload: idClaimsPayload},
		{payload: `{"iss":"i","sub":"s","aud":"broker","exp":1765000000}`},
		{payload: `{"iss":"i","sub":"s","aud":5}`},                   // no audience, for the verifier to refuse
		{payload: `{"iss":"i","sub":"s","aud":null,"nonce":null}`},   // null reads as absent
		{payload: `{"sub":"s","exp":"2025-12-06T10:00:00Z"}`},        // Auth0's RFC 3339 times
		{payload: `{"sub":"s","exp":-1.5,"iat":1e18,"auth_time":0}`}, // truncated as oidc.Time truncates
		{payload: `{"sub":"s","address":"not an object","amr":5}`},   // not read: accepted (zitadel refuses)
		{payload: `null`}, // a nil *idClaims, whose getters are safe
		{payload: `{"iss":5,"sub":"s"}`, refused: true},
		{payload: `{"sub":["s"]}`, refused: true},
		{payload: `{"sub":"s","nonce":{}}`, refused: true},
		{payload: `{"sub":"s","at_hash":true}`, refused: true},
		{payload: `{"sub":"s","c_hash":1}`, refused: true},
		{payload: `{"sub":"s","sid":1}`, refused: true},
		{payload: `{"sub":"s","azp":1}`, refused: true},
		{payload: `{"sub":"s","acr":1}`, refused: true},
		{payload: `{"sub":"s","aud":["a",1]}`, refused: true},
		{payload: `{"sub":"s","exp":true}`, refused: true},
		{payload: `{"sub":"s","iat":"yesterday"}`, refused: true},
		{payload: `{"sub":"s","auth_time":[]}`, refused: true},
		{payload: `{"sub":"s","exp":1e400}`, refused: true},
		{payload: `["sub"]`, refused: true},
		{payload: `{"sub":"s"`, refused: true},
	}
	for _, tc := range cases {
		_, errZ, c, errC := decodeBoth([]byte(tc.payload))
		if tc.refused {
			if errC == nil || errZ == nil {
				t.Errorf("%s: idClaims error %v, oidc.IDTokenClaims error %v; want both refused", tc.payload, errC, errZ)
			}
			continue
		}
		if errC != nil {
			t.Errorf("%s: refused: %v", tc.payload, errC)
			continue
		}
		checkIDClaims(t, []byte(tc.payload))
		if c != nil && c.GetSubject() == "" && tc.payload != `null` {
			t.Errorf("%s: no subject read", tc.payload)
		}
	}

	// The typical payload's fields, read once more against literals.
	var c *idClaims
	if err := json.Unmarshal([]byte(idClaimsPayload), &c); err != nil {
		t.Fatal(err)
	}
	if c.GetIssuer() != "https://idp.example" || !slices.Equal(c.GetAudience(), []string{"broker", "other"}) ||
		c.GetIssuedAt().Unix() != 1764990000 || c.GetAuthTime().Unix() != 1764989000 || c.sid != "08a5019c" ||
		c.claims["email_verified"] != true {
		t.Errorf("read %+v", c)
	}

	// A nil *idClaims (the payload null) answers as an empty one: the
	// verifier's subject check refuses it.
	var none *idClaims
	if none.GetSubject() != "" || !none.GetExpiration().IsZero() || none.GetAudience() != nil || oidc.CheckSubject(none) == nil {
		t.Error("a nil *idClaims does not read as empty")
	}
	none.SetSignatureAlgorithm("RS256") // no panic
}

// TestIDClaimsNamesExactly: a name in another case or a repeated name
// cannot make the verified claim differ from the map's, which the mapping
// reads (zitadel's struct decoding took "SUB" as the subject while the
// mapping read "sub").
func TestIDClaimsNamesExactly(t *testing.T) {
	for _, payload := range []string{
		`{"SUB":"attacker","sub":"victim"}`,
		`{"sub":"victim","SUB":"attacker"}`,
		`{"sub":"attacker","sub":null}`,
	} {
		var c *idClaims
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		if got, want := c.GetSubject(), scalar(c.claims["sub"]); got != want {
			t.Errorf("%s: verified subject %q, the map's %q", payload, got, want)
		}
	}
}

// FuzzIDClaims holds idClaims to checkIDClaims's property on any input.
func FuzzIDClaims(f *testing.F) {
	for _, s := range []string{
		idClaimsPayload, `null`, `{}`, `{"aud":[]}`, `{"aud":"x","exp":"2025-12-06T10:00:00+02:00"}`,
		`{"iss":"a","Iss":"b"}`, `{"exp":1.999,"iat":-0.5}`, `{"sub":"s","sub":null}`, `{"nonce":"\u00e9\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkIDClaims(t, payload)
	})
}

// BenchmarkIDClaims decodes a typical payload as zitadel's type and as
// idClaims (in ParseToken's json.Unmarshal).
func BenchmarkIDClaims(b *testing.B) {
	payload := []byte(idClaimsPayload)
	b.Run("zitadel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var z *oidc.IDTokenClaims
			if err := json.Unmarshal(payload, &z); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("idClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c *idClaims
			if err := json.Unmarshal(payload, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
