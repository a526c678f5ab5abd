package pending

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"syscall"
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

// TestSealEveryField: every field of a login comes back as it was sealed,
// the time to the nanosecond; a login sealed as JSON (before packLogin)
// still opens; a plaintext packLogin does not write (cut short, longer,
// another version, a field's length beyond the end, Remember not 0 or 1)
// does not.
func TestSealEveryField(t *testing.T) {
	aead := testAEAD(t)
	l := Login{State: "s1", Provider: "alpha", Nonce: "n", Verifier: "v", RedirectURI: "https://b/cb", RD: "/app?x=1",
		Created: time.Unix(1_800_000_000, 123_456_789).UTC(), Remember: true, Browser: "h", MaxAge: 300, ACRValues: "urn:a urn:b"}
	for _, want := range []Login{l, {State: "s2", Created: time.Unix(0, 0).UTC()}} {
		v, err := sealLogin(aead, "c1", want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := openLogin(aead, "c1", v); err != nil || got != want {
			t.Fatalf("open = %+v, %v; want %+v", got, err, want)
		}
	}

	sealPlain := func(plain []byte) string {
		nonce := make([]byte, aead.NonceSize())
		return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte("c1")))
	}
	js, _ := json.Marshal(l)
	if got, err := openLogin(aead, "c1", sealPlain(js)); err != nil || got != l {
		t.Fatalf("JSON login: open = %+v, %v; want %+v", got, err, l)
	}

	packed := packLogin(l)
	other := slices.Clone(packed)
	other[0] = loginV1 + 1
	remember := slices.Clone(packed)
	remember[len(remember)-1] = 2
	long := slices.Clone(packed)
	long[1] = 0x7f // State's length, beyond the end
	for name, plain := range map[string][]byte{
		"cut":      packed[:len(packed)-1],
		"longer":   append(slices.Clone(packed), 0),
		"version":  other,
		"remember": remember,
		"length":   long,
		"empty":    nil,
		"JSON bad": []byte(`{"s":1}`),
	} {
		if got, err := openLogin(aead, "c1", sealPlain(plain)); err == nil {
			t.Errorf("%s: opened as %+v", name, got)
		}
	}
}

// BenchmarkSealOpen is a pending login's cookie made at the start and
// opened at the callback.
func BenchmarkSealOpen(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	l := Login{State: randomToken(), Provider: "idp", Nonce: randomToken(), Verifier: randomToken(),
		RedirectURI: "http://127.0.0.1:8080/oauth2/callback/idp", RD: "/", Created: time.Now(), Browser: bindingHash(randomToken())}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		v, err := sealLogin(aead, "_oidc_broker_login_0123456789ab", l)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := openLogin(aead, "_oidc_broker_login_0123456789ab", v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(mustSeal(b, aead, l))), "cookie-bytes")
}

// cpuTime is the process's CPU time (user and system): on a shared
// machine, less inflated by other work than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mustSeal(b *testing.B, aead cipher.AEAD, l Login) string {
	v, err := sealLogin(aead, "c", l)
	if err != nil {
		b.Fatal(err)
	}
	return v
}
