package session

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// inflateWith is compress/flate's reader of a stream written against dict.
func inflateWith(t testing.TB, dict, z []byte) []byte {
	t.Helper()
	b, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(z), dict))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return b
}

// TestDeflateFixed: compress/flate inflates what deflateFixed writes, for
// inputs that exercise every length and distance code: empty, one byte,
// runs (the longest matches, 258, and overlapping ones), matches reaching
// into the dictionary, and text longer than the 32 KiB window.
func TestDeflateFixed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int, alphabet string) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	var every []byte // a match of each length 4-258, at growing distances
	for l := 4; l <= 258; l++ {
		every = append(every, random(l, "abcdefghijklmnopqrstuvwxyz")...)
		every = append(every, random(rng.IntN(300), "0123456789")...)
		every = append(every, every[len(every)-l-rng.IntN(len(every)-l+1)/2:][:l]...)
	}
	for name, c := range map[string]struct{ dict, in []byte }{
		"empty":           {nil, nil},
		"empty with dict": {jwsDict, nil},
		"one byte":        {nil, []byte("x")},
		"every byte value": {nil, func() []byte {
			b := make([]byte, 512)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()},
		"run":            {nil, bytes.Repeat([]byte("a"), 1000)},
		"two-byte run":   {nil, bytes.Repeat([]byte("ab"), 700)},
		"every length":   {nil, every},
		"the dictionary": {jwsDict, jwsDict},
		"a payload":      {jwsDict, []byte(demoPayload)},
		"beyond window":  {jwsDict, append(random(40000, "ab"), append(jwsDict, random(30000, "abc")...)...)},
		"binary":         {jwsDict, random(5000, "\x00\x01\x02\xff\xfe")},
		"text":           {nil, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog; ", 50))},
	} {
		z := deflateFixed(c.dict, c.in)
		if got := inflateWith(t, c.dict, z); !bytes.Equal(got, c.in) {
			t.Errorf("%s: %d bytes inflate to %d other bytes", name, len(c.in), len(got))
		}
		if len(c.in) > 500 && len(z) > len(c.in)*9/8+8 {
			t.Errorf("%s: %d bytes deflate to %d", name, len(c.in), len(z))
		}
	}
	// Matches are found: a run of 1,000 bytes is a few bytes, and the
	// dictionary against itself one match after another.
	if n := len(deflateFixed(nil, bytes.Repeat([]byte("a"), 1000))); n > 16 {
		t.Errorf("a run of 1000 takes %d bytes", n)
	}
	if n := len(deflateFixed(jwsDict, jwsDict)); n > 16 {
		t.Errorf("the dictionary against itself takes %d bytes", n)
	}
}

// TestDeflateFixedSize: the demo login's ID token (header and payload, its
// identity's claims referred to) is within a few percent of what
// compress/flate's writer made of it at BestCompression.
func TestDeflateFixedSize(t *testing.T) {
	plain := demoPlain()
	var best bytes.Buffer
	fw, _ := flate.NewWriterDict(&best, flate.BestCompression, jwsDict)
	_, _ = fw.Write(plain)
	_ = fw.Close()
	n := len(deflateFixed(jwsDict, plain))
	t.Logf("%d bytes: compress/flate %d, deflateFixed %d", len(plain), best.Len(), n)
	if n > best.Len()*110/100 {
		t.Errorf("deflateFixed: %d bytes, compress/flate: %d", n, best.Len())
	}
}

func FuzzDeflateFixed(f *testing.F) {
	f.Add([]byte(demoPayload), true)
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), false)
	f.Fuzz(func(t *testing.T, in []byte, withDict bool) {
		var dict []byte
		if withDict {
			dict = jwsDict
		}
		if got := inflateWith(t, dict, deflateFixed(dict, in)); !bytes.Equal(got, in) {
			t.Fatalf("%q inflates to %q", in, got)
		}
	})
}

func BenchmarkDeflateFixed(b *testing.B) {
	plain := demoPlain()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(deflateFixed(jwsDict, plain))
	}
	b.ReportMetric(float64(n), "bytes")
}

// FuzzReferClaims: references resolve to the payload they were made from,
// and the earlier resolver (each claim's references replaced in turn, as
// earlier versions read them) reads them alike.
func FuzzReferClaims(f *testing.F) {
	f.Add([]byte(demoPayload))
	f.Add([]byte(`"alpha-alice""alpha-alice"alpha-alice"`))
	f.Add([]byte(`{"a":"x\"alice","b":["admins","engineering","admins"]}`))
	f.Add([]byte("\"alice\x01\""))
	claims := claimsOf(packIdentity)
	earlier := func(p []byte, refs byte) []byte {
		for i, c := range claims {
			if refs&(1<<i) != 0 {
				p = bytes.ReplaceAll(p, []byte{'"', byte(1 + i), '"'}, []byte(`"`+c+`"`))
			}
		}
		return p
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		pr, refs := referClaims(p, claims)
		if got := resolveClaims(pr, claims, refs); !bytes.Equal(got, p) {
			t.Fatalf("%q refers as %q, resolves to %q", p, pr, got)
		}
		if got := earlier(pr, refs); !bytes.Equal(got, p) {
			t.Fatalf("%q refers as %q, the earlier resolver makes %q", p, pr, got)
		}
		if refs == 0 && !bytes.Equal(pr, p) {
			t.Fatalf("%q changed without references: %q", p, pr)
		}
	})
}

// TestInflatesToTruncated: inflatesTo, packJWS's check of deflateFixed's
// stream, refuses what inflate (readJWS) refuses: a stream cut short
// (no end of block; compress/flate says io.ErrUnexpectedEOF).
func TestInflatesToTruncated(t *testing.T) {
	plain := []byte(demoPayload)
	z := deflateFixed(jwsDict, plain)
	if !inflatesTo(z, plain) {
		t.Fatal("the whole stream")
	}
	for cut := 1; cut <= 2; cut++ {
		zt := z[:len(z)-cut]
		_, err := inflate(zt)
		if inflatesTo(zt, plain) && err != nil {
			t.Errorf("stream cut by %d byte(s): inflatesTo accepts it, inflate refuses it (%v)", cut, err)
		}
	}
}

// demoPlain is what packJWS deflates of the demo login's ID token: its
// header and its payload with the identity's claims referred to.
func demoPlain() []byte {
	p, _ := referClaims([]byte(demoPayload), claimsOf(packIdentity))
	return append([]byte(`{"alg":"RS256","kid":"b661ade1-0374-4808-af4a-567c16339ab3","typ":"JWT"}`), p...)
}
