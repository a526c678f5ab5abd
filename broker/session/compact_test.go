package session

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

// testJWS is a compact JWS with the given payload and a 256-byte
// signature, as an RS256 ID token is.
func testJWS(payload string) string {
	sig := bytes.Repeat([]byte{0xa5, 0x3c, 0x7e, 0x01}, 64)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","kid":"b661ade1-0374-4808-af4a-567c16339ab3","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

var packIdentity = providers.Identity{Provider: "alpha", Subject: "alpha-alice", Email: "alice@alpha.example",
	EmailVerified: true, Name: "Alice Anderson", PreferredUsername: "alice", Groups: []string{"admins", "engineering"},
	AuthTime: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)}

const demoPayload = `{"amr":["pwd"],"at_hash":"arPEUJQtBl2uV7-N8XJzxw","aud":["broker-alpha"],"auth_time":1796617901,` +
	`"azp":"broker-alpha","c_hash":"WTLQyqhpuc4vTNvZRwqwFw","client_id":"broker-alpha","email":"alice@alpha.example",` +
	`"email_verified":true,"exp":1796621501,"groups":["admins","engineering"],"iat":1796617901,"iss":"http://127.0.0.1:35759",` +
	`"name":"Alice Anderson","nonce":"5aLBfIM6xJMGx--VlWw2lwdEJFDNDKkrLiolfflNESI","preferred_username":"alice","sub":"alpha-alice"}`

// TestPackTokens: every kind of token packs and unpacks to itself: JWS
// (packed), and anything else (raw), including what looks like a JWS but
// would not come back byte for byte.
func TestPackTokens(t *testing.T) {
	exp := time.Unix(1796621501, 0).UTC()
	enc := base64.RawURLEncoding
	for name, tok := range map[string]Tokens{
		"empty":      {},
		"demo login": {IDToken: testJWS(demoPayload), Expiry: exp},
		"all": {IDToken: testJWS(demoPayload), RefreshToken: testJWS(`{"typ":"Refresh","sub":"alpha-alice"}`),
			AccessToken: "opaque-access-token", Expiry: exp, SID: "5bd5a3f4"},
		"JWT access token": {AccessToken: testJWS(`{"sub":"alpha-alice","scope":"openid"}`)},
		"opaque":           {IDToken: testJWS(`{"sub":"x"}`), RefreshToken: strings.Repeat("r", 512)},
		"not canonical":    {IDToken: enc.EncodeToString([]byte(`{"a":1}`)) + "." + enc.EncodeToString([]byte(`{}`)) + ".AB"},
		"padded":           {IDToken: base64.URLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.e30"},
		"four parts":       {IDToken: "e30.e30.e30.e30"},
		"not base64":       {IDToken: "a.b!.c"},
		"control bytes":    {IDToken: testJWS("{\"sub\":\"alpha-alice\",\"x\":\"\x01\"}")},
		"escaped claim":    {IDToken: testJWS(`{"sub":"alpha\u002dalice"}`)},
		"claims alone":     {IDToken: testJWS(`{"sub":"alpha-alice","preferred_username":"alice","name":"alice"}`)},
	} {
		t.Run(name, func(t *testing.T) {
			b := packTokens(tok, claimsOf(packIdentity))
			got, err := unpackTokens(b, claimsOf(packIdentity))
			if err != nil || got != tok {
				t.Errorf("unpacks to %+v, %v; want %+v", got, err, tok)
			}
		})
	}
	b := packTokens(Tokens{IDToken: testJWS(demoPayload)}, claimsOf(packIdentity))
	if n := len(testJWS(demoPayload)); len(b) > n*55/100 {
		t.Errorf("a %d-byte ID token packs into %d bytes", n, len(b))
	}
	// Expiry is kept to the second, never later.
	sub := time.Unix(1796621501, 999_000_000)
	if got, _ := unpackTokens(packTokens(Tokens{Expiry: sub}, nil), nil); !got.Expiry.Equal(time.Unix(1796621501, 0).UTC()) {
		t.Errorf("expiry %v unpacks to %v", sub, got.Expiry)
	}
}

// TestPackTokensEveryField: every field of Tokens survives packing (a
// field added to Tokens and not to packTokens would be lost from every
// session).
func TestPackTokensEveryField(t *testing.T) {
	var tok Tokens
	v := reflect.ValueOf(&tok).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Interface().(type) {
		case string:
			f.SetString(fmt.Sprintf("value of %s", v.Type().Field(i).Name))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(1796621501+int64(i), 0).UTC()))
		default:
			t.Fatalf("Tokens.%s: a type the test does not know", v.Type().Field(i).Name)
		}
	}
	got, err := unpackTokens(packTokens(tok, nil), nil)
	if err != nil || got != tok {
		t.Errorf("unpacks to %+v, %v; want %+v", got, err, tok)
	}
}

// TestPackedTokensOtherIdentity: packed tokens that refer to the identity's
// claims do not unpack with another identity (a session whose identity an
// earlier version changed without its tokens); damaged ones do not unpack.
func TestPackedTokensOtherIdentity(t *testing.T) {
	tok := Tokens{IDToken: testJWS(demoPayload)}
	b := packTokens(tok, claimsOf(packIdentity))
	other := packIdentity
	other.Email = "mallory@alpha.example"
	if got, err := unpackTokens(b, claimsOf(other)); err == nil {
		t.Errorf("unpacked with another identity: %q", got.IDToken)
	}
	for i := range b { // damage anywhere: an error or some tokens, never a panic
		d := bytes.Clone(b)
		d[i] ^= 0x40
		_, _ = unpackTokens(d, claimsOf(packIdentity))
	}
	for _, n := range []int{0, 1, 3, len(b) / 2, len(b) - 1} {
		if _, err := unpackTokens(b[:n], claimsOf(packIdentity)); err == nil {
			t.Errorf("%d of %d bytes unpack", n, len(b))
		}
	}
}

// TestPackedSessionEarlierVersion: a session written by this version reads
// on a replica of an earlier one (scs's gob codec, the same registered
// types) with its identity, so nobody is signed out during a rolling
// deploy; what that replica writes back keeps the packed tokens; and when
// it writes tokens of its own, those win.
func TestPackedSessionEarlierVersion(t *testing.T) {
	deadline := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	tok := Tokens{IDToken: testJWS(demoPayload), RefreshToken: "rt", Expiry: time.Unix(1796621501, 0).UTC(), SID: "sid"}
	codec := &sessionCodec{cache: newDecodeCache(1 << 20)}
	b, err := codec.Encode(deadline, map[string]any{keyIdentity: packIdentity, keyTokens: tok})
	if err != nil {
		t.Fatal(err)
	}
	var old scs.GobCodec
	_, values, err := old.Decode(b)
	if err != nil {
		t.Fatalf("an earlier version cannot decode the session: %v", err)
	}
	if id, _ := values[keyIdentity].(providers.Identity); !reflect.DeepEqual(id, packIdentity) {
		t.Errorf("an earlier version reads the identity %+v", id)
	}
	if _, ok := values[keyTokens]; ok {
		t.Error("tokens stored in the earlier form too")
	}
	values[keyCSRF] = "csrf" // the earlier version writes the session back
	b2, err := old.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := codec.Decode(b2)
	if err != nil || got[keyTokens] != tok || got[keyCSRF] != "csrf" {
		t.Errorf("after an earlier version wrote it: %v %v", got, err)
	}
	// The earlier version's refresh writes its own tokens: they win.
	newer := Tokens{IDToken: "opaque", Expiry: time.Unix(1796625101, 0).UTC()}
	values[keyTokens] = newer
	b3, err := old.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err = codec.Decode(b3)
	if err != nil || got[keyTokens] != newer {
		t.Errorf("after an earlier version refreshed: %v %v", got[keyTokens], err)
	}
	if b4, _ := codec.Encode(deadline, got); bytes.Contains(b4, []byte("broker.sessionTokens")) {
		t.Error("this version wrote the tokens in the earlier form")
	}
}

// TestPackedSessionGolden pins the packed form (format byte, dictionary,
// layout): sessions this version writes must decode in every later one.
func TestPackedSessionGolden(t *testing.T) {
	path := filepath.Join("testdata", "session", "packed.gob")
	deadline := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	want := map[string]any{keyIdentity: packIdentity,
		keyTokens: Tokens{IDToken: testJWS(demoPayload), RefreshToken: testJWS(`{"typ":"Refresh"}`), AccessToken: "at",
			Expiry: time.Unix(1796621501, 0).UTC(), SID: "sid-1"}}
	codec := &sessionCodec{cache: newDecodeCache(1 << 20)}
	if *updateGolden {
		b, err := codec.Encode(deadline, want)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, values, err := codec.Decode(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(values[keyIdentity], want[keyIdentity]) || values[keyTokens] != want[keyTokens] {
		t.Errorf("golden packed session decodes to %#v", values)
	}
}

// TestEarlierSessionsDecode: sessions of the earlier form (the golden
// files, tokens under keyTokens) decode with this version's codec, and are
// written back packed.
func TestEarlierSessionsDecode(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "session", "whole.gob"))
	if err != nil {
		t.Fatal(err)
	}
	codec := &sessionCodec{cache: newDecodeCache(1 << 20)}
	deadline, values, err := codec.Decode(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenSessionValues()
	if !reflect.DeepEqual(values, want) {
		t.Fatalf("decodes to %#v, want %#v", values, want)
	}
	b, err := codec.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("broker.sessionTokens")) {
		t.Error("written back in the earlier form")
	}
	_, again, err := codec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(again, keyLogin)
	if !reflect.DeepEqual(again, want) {
		t.Errorf("written back, decodes to %#v", again)
	}
}

// BenchmarkPackTokens: what a login's tokens cost to pack (once per login
// or refresh): the demo IdP's ID token deflated and the stream checked by
// inflating it; and the packed size.
func BenchmarkPackTokens(b *testing.B) {
	t := Tokens{IDToken: testJWS(demoPayload), AccessToken: "at", Expiry: time.Unix(1796621501, 0)}
	claims := claimsOf(packIdentity)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(packTokens(t, claims))
	}
	b.ReportMetric(float64(n), "bytes")
}

// TestPackTokensNewline: a JWS whose segments hold CR or LF (which Go's
// base64 decoder skips, strict or not) is kept as it is, not packed into a
// form that unpacks to another string (packJWS checks its work without
// base64: it relies on strict decoding encoding back to itself).
func TestPackTokensNewline(t *testing.T) {
	for _, tok := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"eyJhbGciOiJS\nUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIi\r\nOiJhbGljZSJ9.c2lnbmF0dXJl",
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0\ndXJl",
	} {
		tk := Tokens{IDToken: tok, RefreshToken: tok, AccessToken: tok}
		b := packTokens(tk, []string{"alice"})
		got, err := unpackTokens(b, []string{"alice"})
		if err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if got.IDToken != tok || got.RefreshToken != tok || got.AccessToken != tok {
			t.Errorf("packed %q, unpacked %q", tok, got.IDToken)
		}
	}
}
