package session

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

// decodesAsGob fails t unless gob's decoder (scs.GobCodec, as every
// replica of every version decodes) reads the compact encoding of
// (deadline, values) as it reads gob's own encoding of them.
func decodesAsGob(t *testing.T, deadline time.Time, values map[string]any) []byte {
	t.Helper()
	var g scs.GobCodec
	compact, ok := encodeCompact(deadline, values)
	if !ok {
		t.Fatalf("not encoded: %#v", values)
	}
	own, err := g.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	wantDeadline, want, err := g.Decode(own)
	if err != nil {
		t.Fatal(err)
	}
	gotDeadline, got, err := g.Decode(compact)
	if err != nil {
		t.Fatalf("gob cannot decode the compact encoding of %#v: %v", values, err)
	}
	if !gotDeadline.Equal(wantDeadline) || gotDeadline.Location().String() != wantDeadline.Location().String() || !reflect.DeepEqual(got, want) {
		t.Fatalf("compact decodes to %v %#v\n gob's own to %v %#v", gotDeadline, got, wantDeadline, want)
	}
	if len(compact) >= len(own) {
		t.Errorf("compact %d bytes, gob's own %d", len(compact), len(own))
	}
	return compact
}

// TestCompactGobDecodesAsGob: sessions written without gob's type names
// decode with gob's own decoder to the same values: on this version and on
// replicas of earlier ones, which decode with scs.GobCodec.
func TestCompactGobDecodesAsGob(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	deadline := time.Date(2026, 1, 3, 0, 0, 0, 0, time.FixedZone("X", 3600))
	long := strings.Repeat("é", 70000) // lengths of 3 bytes
	full := providers.Identity{Provider: "kc", Subject: "1", Email: "a@example.com", EmailVerified: true, Name: "A B",
		PreferredUsername: "ab", Groups: []string{"g:admins", "", long}, GroupsIncomplete: true,
		AuthTime: at, AuthnTime: at.In(time.FixedZone("Y", -7200)), ACR: "gold"}
	cases := map[string]map[string]any{
		"identity, every field": {keyIdentity: full},
		"identity, none":        {keyIdentity: providers.Identity{}},
		"identity, sub only":    {keyIdentity: providers.Identity{Provider: "p", Subject: "s"}},
		"identity, empty groups": {keyIdentity: providers.Identity{Subject: "s", Groups: []string{}},
			keyCSRF: "", keyRemember: false, keyLogin: []byte{}},
		"login": {keyIdentity: full, keyLogin: []byte("packed\x00\xff"), keyCSRF: "csrf-token", keyRemember: true},
		"long":  {keyCSRF: long, keyLogin: []byte(long), long: "x"},
	}
	// Each field alone (its definition then is the only one).
	rv := reflect.ValueOf(full)
	for i := range rv.NumField() {
		one := reflect.New(rv.Type()).Elem()
		one.Field(i).Set(rv.Field(i))
		cases["identity, "+rv.Type().Field(i).Name] = map[string]any{keyIdentity: one.Interface(), keyCSRF: "c"}
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) { decodesAsGob(t, deadline, values) })
	}
}

// TestCompactGobRandom: random identities and values, decoded by gob.
func TestCompactGobRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		b := make([]byte, r.IntN(3)*r.IntN(200))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	tm := func() time.Time {
		if r.IntN(3) == 0 {
			return time.Time{}
		}
		return time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9)).In(time.FixedZone("", 60*(r.IntN(1000)-500)))
	}
	for range 500 {
		id := providers.Identity{Provider: str(), Subject: str(), Email: str(), EmailVerified: r.IntN(2) == 0,
			Name: str(), PreferredUsername: str(), GroupsIncomplete: r.IntN(2) == 0, AuthTime: tm(), AuthnTime: tm(), ACR: str()}
		for range r.IntN(4) {
			id.Groups = append(id.Groups, str())
		}
		values := map[string]any{keyIdentity: id}
		for range r.IntN(4) {
			switch r.IntN(3) {
			case 0:
				values[str()] = str()
			case 1:
				values[str()] = r.IntN(2) == 0
			case 2:
				values[str()] = []byte(str())
			}
		}
		decodesAsGob(t, time.Now().Add(time.Duration(r.Int64N(1e15))), values)
	}
}

// TestCompactGobFallsBack: what encodeCompact does not write, gob's own
// encoder does (the codec's Encode), and that decodes.
func TestCompactGobFallsBack(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	for name, values := range map[string]map[string]any{
		"sign-out in progress":   {keySignOut: SignOutReturn{Provider: "p", State: "s"}},
		"earlier pending logins": {keyPending: map[string]legacyPending{}},
		"two identities":         {keyIdentity: providers.Identity{Subject: "a"}, "other": providers.Identity{Subject: "b"}},
		"empty":                  {},
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := encodeCompact(deadline, values); ok {
				t.Fatal("encoded")
			}
			codec := &sessionCodec{cache: newDecodeCache(1 << 20)}
			b, err := codec.Encode(deadline, values)
			if err != nil {
				t.Fatal(err)
			}
			if _, got, err := codec.Decode(b); err != nil || len(got) != len(values) {
				t.Errorf("decodes to %#v, %v", got, err)
			}
		})
	}
}

// TestGobUint: gob's integer encoding at its boundaries.
func TestGobUint(t *testing.T) {
	for x, want := range map[uint64]string{0: "\x00", 127: "\x7f", 128: "\xff\x80", 256: "\xfe\x01\x00", 1 << 63: "\xf8\x80\x00\x00\x00\x00\x00\x00\x00"} {
		if got := string(gobUint(nil, x)); got != want {
			t.Errorf("gobUint(%d) = %q, want %q", x, got, want)
		}
	}
	for x, want := range map[int64]string{-1: "\x01", 64: "\xff\x80", -64: "\x7f", 1: "\x02"} {
		if got := string(gobInt(nil, x)); got != want {
			t.Errorf("gobInt(%d) = %q, want %q", x, got, want)
		}
	}
}

// BenchmarkSessionEncode: a login's session (identity, packed tokens, CSRF
// token) as the codec writes it, and with gob's own encoder.
func BenchmarkSessionEncode(b *testing.B) {
	deadline := time.Now().Add(time.Hour)
	values := map[string]any{keyIdentity: packIdentity, keyLogin: make([]byte, 500), keyCSRF: "0123456789abcdef0123456789abcdef0123456789a"}
	b.Run("compact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := encodeCompact(deadline, values); !ok {
				b.Fatal("not encoded")
			}
		}
	})
	b.Run("gob", func(b *testing.B) {
		b.ReportAllocs()
		var g scs.GobCodec
		for b.Loop() {
			if _, err := g.Encode(deadline, values); err != nil {
				b.Fatal(err)
			}
		}
	})
}
