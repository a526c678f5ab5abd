package pending

import (
	"crypto/aes"
	"crypto/cipher"
	"strings"
	"testing"
	"time"
)

func testAEAD(t *testing.T) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// TestSealBindsName: a sealed login opens under its own cookie name only,
// and a damaged or oversized value never opens.
func TestSealBindsName(t *testing.T) {
	aead := testAEAD(t)
	l := Login{State: "s1", Provider: "alpha", Nonce: "n", Verifier: "v", RedirectURI: "https://b/cb", Created: time.Unix(1, 0).UTC(), Browser: "h"}
	v, err := sealLogin(aead, "c1", l)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openLogin(aead, "c1", v); err != nil || got != l {
		t.Fatalf("open = %+v, %v; want %+v", got, err, l)
	}
	for name, value := range map[string]string{
		"c2":       v,                          // moved to another login's cookie
		"c1":       v[:len(v)-2] + "AA",        // damaged
		"c1 long":  strings.Repeat("A", 5<<10), // beyond maxCookie
		"c1 short": "AAAA",                     // shorter than nonce and tag
	} {
		if _, err := openLogin(aead, strings.Fields(name)[0], value); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}
