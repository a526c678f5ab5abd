package providers

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
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

// sameClaims reports how c differs from z, "" when it does not; withMap
// compares the claims maps too.
func sameClaims(z *oidc.IDTokenClaims, c *idClaims, withMap bool) string {
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
	if withMap && !reflect.DeepEqual(z.Claims, c.claims) {
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
// hold idClaims to, against zitadel's oidc.IDTokenClaims:
//
//   - on payload itself, idClaims refuses it only when zitadel's type
//     does too, or for a time out of range; where both accept it (and
//     comparable says they read the same), they read the same claims;
//   - on the projection of payload (the typed claims exactly as idClaims
//     reads them, exact names and the last of repeated ones, and no other
//     claim), zitadel's type accepts it exactly when idClaims accepts
//     payload (but for a time out of range), and reads the same claims.
//
// The second catches a check dropped from idClaims: zitadel's type would
// refuse the projection that idClaims accepted.
func checkIDClaims(t *testing.T, payload []byte) {
	t.Helper()
	z, errZ, c, errC := decodeBoth(payload)
	var m map[string]any
	object := json.Unmarshal(payload, &m) == nil && m != nil
	proj := map[string]any{}
	for _, n := range typedNames {
		if v, ok := m[n]; ok {
			proj[n] = v
		}
	}
	if errC != nil && errZ == nil && !(object && timeOutOfRange(proj)) {
		t.Fatalf("%s: refused (%v), accepted by oidc.IDTokenClaims", payload, errC)
	}
	if errC == nil && errZ == nil && comparable(payload) {
		if d := sameClaims(z, c, true); d != "" {
			t.Fatalf("%s: differs from oidc.IDTokenClaims: %s", payload, d)
		}
	}
	if !object {
		if errC == nil && c != nil {
			t.Fatalf("%s: not a JSON object, accepted", payload)
		}
		return
	}
	pb, err := json.Marshal(proj)
	if err != nil {
		t.Fatal(err)
	}
	var zp *oidc.IDTokenClaims
	errZP := json.Unmarshal(pb, &zp)
	switch {
	case errZP != nil && errC == nil:
		t.Fatalf("%s: accepted, but oidc.IDTokenClaims refuses its claims %s: %v", payload, pb, errZP)
	case errZP == nil && errC != nil && !timeOutOfRange(proj):
		t.Fatalf("%s: refused (%v), but oidc.IDTokenClaims accepts its claims %s", payload, errC, pb)
	case errZP == nil && errC == nil:
		if d := sameClaims(zp, c, false); d != "" {
			t.Fatalf("%s: differs from oidc.IDTokenClaims on its claims %s: %s", payload, pb, d)
		}
	}
}

// timeOutOfRange says whether one of claims's times is a number idClaims
// refuses as out of range.
func timeOutOfRange(claims map[string]any) bool {
	for _, n := range []string{"exp", "iat", "auth_time"} {
		if f, ok := claims[n].(float64); ok && (f > maxTime || f < -maxTime) {
			return true
		}
	}
	return false
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
		{payload: `{"sub":"s","exp":-1.5,"iat":1e15,"auth_time":0}`}, // truncated as oidc.Time truncates
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
		{payload: `{"sub":"s","exp":9007199254740992}`}, // 2^53
		{payload: `["sub"]`, refused: true},
		{payload: `{"sub":"s"`, refused: true},
	}
	// Every typed claim with every JSON type it must not have.
	wrong := map[string]string{"number": "1", "boolean": "true", "array": `["x"]`, "object": `{"a":"b"}`}
	for _, n := range typedNames {
		for kind, v := range wrong {
			refused := true
			switch {
			case n == "aud" && kind != "array": // no audience, for the verifier to refuse
				refused = false
			case n == "aud": // an array of strings is an audience
				v = `[1]`
			case kind == "number" && (n == "exp" || n == "iat" || n == "auth_time"):
				v = `"1 Jan 2025"` // a number is a time; a string must be RFC 3339
			}
			cases = append(cases, struct {
				payload string
				refused bool
			}{payload: `{"sub":"s","` + n + `":` + v + `}`, refused: refused})
		}
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

	// A time beyond ±2^53 s: zitadel's type converts it as the CPU does,
	// idClaims refuses it.
	for _, payload := range []string{`{"sub":"s","exp":1e19}`, `{"sub":"s","iat":-9007199254740994}`, `{"sub":"s","auth_time":1.7e308}`} {
		_, errZ, _, errC := decodeBoth([]byte(payload))
		if errC == nil || errZ != nil {
			t.Errorf("%s: idClaims error %v, oidc.IDTokenClaims error %v; want idClaims's only", payload, errC, errZ)
		}
		checkIDClaims(t, []byte(payload))
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

// TestIDClaimsNamesExactly verifies signed ID tokens whose claims come
// twice, under their name and under another case (or the long s, which
// encoding/json folds to s) or repeated, through zitadel's verifier with
// idClaims: the claim checked is the one of the exact name, the last of
// them, so the subject verified is the subject the mapping reads, and an
// audience, nonce or expiry under another name cannot pass a check the
// real one fails. (zitadel's own type took "Sub" or "ſub" as the subject
// while the mapping read "sub", and accepted every refused token below.)
func TestIDClaimsNamesExactly(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const iss, aud, nonce = "https://idp.example", "broker", "n-123"
	v := rp.NewIDTokenVerifier(iss, aud, staticKeys{&key.PublicKey}, rp.WithNonce(func(context.Context) string { return nonce }))
	now := time.Now().Unix()
	base := fmt.Sprintf(`"iss":%q,"iat":%d,"exp":%d`, iss, now, now+300)
	for _, tc := range []struct {
		claims string
		sub    string // the subject verified, "" when refused
	}{
		{`"sub":"victim","Sub":"attacker","aud":"broker","nonce":"n-123"`, "victim"},
		{`"Sub":"attacker","sub":"victim","aud":"broker","nonce":"n-123"`, "victim"},
		{`"sub":"victim","ſub":"attacker","aud":"broker","nonce":"n-123"`, "victim"},
		{`"sub":"attacker","sub":null,"aud":"broker","nonce":"n-123"`, ""},
		{`"sub":"u","aud":"other","AUD":"broker","nonce":"n-123"`, ""},
		{`"sub":"u","aud":"broker","nonce":"bad","Nonce":"n-123"`, ""},
		{`"sub":"u","aud":"broker","nonce":"n-123","exp":1,"EXP":` + fmt.Sprint(now+300), ""},
		{`"sub":"u","aud":"broker","nonce":"n-123"`, "u"},
	} {
		payload := "{" + base + "," + tc.claims + "}"
		jws, err := signer.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		token, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		c, err := rp.VerifyIDToken[*idClaims](t.Context(), token, v)
		switch {
		case tc.sub == "" && err == nil:
			t.Errorf("%s: verified (subject %q), want refused", payload, c.GetSubject())
		case tc.sub != "" && err != nil:
			t.Errorf("%s: refused: %v", payload, err)
		case tc.sub != "" && (c.GetSubject() != tc.sub || scalar(c.claims["sub"]) != tc.sub):
			t.Errorf("%s: verified subject %q, the map's %q; want %q", payload, c.GetSubject(), scalar(c.claims["sub"]), tc.sub)
		}
	}
}

// staticKeys is an oidc.KeySet of fixed public keys.
type staticKeys []any

func (k staticKeys) VerifySignature(_ context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	var last error
	for _, key := range k {
		payload, err := jws.Verify(key)
		if err == nil {
			return payload, nil
		}
		last = err
	}
	return nil, last
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
