package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/providers"
)

// The broker at scale: a thousand providers, a hundred thousand sessions.

// scaleProviders are n OpenID providers as a multi-tenant deployment has
// them: one realm each, distinct client ids and secrets, ten groups on the
// sign-in page, an email domain for every fourth (home-realm discovery).
// Nothing is contacted: discovery is lazy.
func scaleProviders(n int) []providers.Config {
	ps := make([]providers.Config, n)
	for i := range ps {
		ps[i] = providers.Config{ID: fmt.Sprintf("realm-%04d", i), Name: fmt.Sprintf("Realm %d", i), Group: fmt.Sprintf("Region %d", i%10),
			Issuer: fmt.Sprintf("https://login.example.com/realms/%d", i), ClientID: fmt.Sprintf("broker-%d", i),
			ClientSecret: fmt.Sprintf("secret-%d-%x", i, uint64(i)*0x9e3779b97f4a7c15)}
		if i%4 == 0 {
			ps[i].Domains = []string{fmt.Sprintf("realm%04d.example", i), fmt.Sprintf(".realm%04d.example.org", i)}
		}
	}
	return ps
}

// scaleYAML is scaleProviders(n) as a configuration file.
func scaleYAML(n int) []byte {
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nproviders:\n")
	for _, p := range scaleProviders(n) {
		fmt.Fprintf(&b, "  - id: %s\n    name: %q\n    group: %q\n    issuer: %q\n    client_id: %q\n    client_secret: %q\n",
			p.ID, p.Name, p.Group, p.Issuer, p.ClientID, p.ClientSecret)
		if len(p.Domains) > 0 {
			fmt.Fprintf(&b, "    domains: [%s]\n", strings.Join(p.Domains, ", "))
		}
	}
	return []byte(b.String())
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkNew1000Providers is the broker's start-up with a thousand
// providers, without listening: "new" is New on a Config (validation, the
// registry, the sign-in page's catalog, the store); "parse+new" starts from
// the YAML, as the binary does (LoadConfig without the file read). The
// end-to-end figure, from process start to /healthz, is
// TestStartup1000Providers in e2e/.
func BenchmarkNew1000Providers(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		cfg := Config{Providers: scaleProviders(1000)}
		b.ReportAllocs()
		for b.Loop() {
			srv, err := New(cfg, Options{Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			_ = srv.Close()
		}
	})
	b.Run("parse+new", func(b *testing.B) {
		data := scaleYAML(1000)
		noEnv := func(string) (string, bool) { return "", false }
		b.ReportAllocs()
		for b.Loop() {
			cfg, err := ParseConfig("broker.yaml", data, noEnv)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(cfg, Options{Logger: discardLogger()})
			if err != nil {
				b.Fatal(err)
			}
			_ = srv.Close()
		}
	})
}

// scaleSessions is how many signed-in sessions BenchmarkMemory100kSessions
// creates.
const scaleSessions = 100_000

// BenchmarkMemory100kSessions is the memory of a broker with 1,000
// providers and 100,000 signed-in sessions in the memory store. Run it once:
//
//	go test ./broker -run '^$' -bench Memory100kSessions -benchtime=1x
//
// Each session is what a login through an OpenID provider leaves (see
// finishLogin): the identity (a UUID subject, email, name, username, four
// groups), the tokens (an RS256 ID token of about 1.2 KB with Keycloak's
// usual claims, a 200-byte opaque refresh token, an expiry, a sid), and
// its two index entries (by subject and by sid) for back-channel logout.
// The sessions are written through the session manager as a login does
// (Load, Put, Commit), one user each, spread over the providers.
//
// Reported, after a GC: the Go heap in use and the process's RSS (VmRSS)
// in total, what the 1,000 providers take, and the heap and RSS added per
// session; index-heap-B/session is the index's part of it (measured on a
// store.Backend of its own afterwards); also the encoded size of one session and
// the time to create one (the stores' periodic sweeps of expired entries
// included). RSS counts the test binary too, and memory the runtime keeps
// after a GC; the heap figures are the precise ones.
func BenchmarkMemory100kSessions(b *testing.B) {
	idTokenSize := 0
	for b.Loop() {
		heap0, rss0 := memoryNow(b)
		srv, err := New(Config{Providers: scaleProviders(1000)}, Options{Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		heap1, rss1 := memoryNow(b)
		start := time.Now()
		for i := range scaleSessions {
			idTokenSize += scaleSession(b, srv, i)
		}
		perSession := time.Since(start) / scaleSessions
		heap2, rss2 := memoryNow(b)
		encoded := scaleEncodedSize(b, srv)
		runtime.KeepAlive(srv)
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
		index := scaleIndexSize(b)

		const mb = 1 << 20
		b.ReportMetric(0, "ns/op") // one op is the whole run; see ns/session
		b.ReportMetric(float64(heap2)/mb, "heap-MB")
		b.ReportMetric(float64(rss2)/mb, "rss-MB")
		b.ReportMetric(float64(heap1-heap0)/mb, "providers-heap-MB")
		b.ReportMetric(float64(rss1-rss0)/mb, "providers-rss-MB")
		b.ReportMetric(float64(heap2-heap1)/scaleSessions, "heap-B/session")
		b.ReportMetric(float64(rss2-rss1)/scaleSessions, "rss-B/session")
		b.ReportMetric(float64(index)/scaleSessions, "index-heap-B/session")
		b.ReportMetric(float64(encoded), "encoded-B/session")
		b.ReportMetric(float64(idTokenSize)/scaleSessions, "idtoken-B")
		b.ReportMetric(float64(perSession.Nanoseconds()), "ns/session")
		idTokenSize = 0
	}
}

// scaleSession creates the i-th signed-in session and returns the size of
// its ID token.
func scaleSession(b *testing.B, srv *Server, i int) int {
	ctx := b.Context()
	provider := fmt.Sprintf("realm-%04d", i%1000)
	sub, sid := uuid(), uuid()
	user := "user" + strconv.Itoa(i)
	id := providers.Identity{Provider: provider, Subject: sub, Email: user + "@" + provider + ".example", EmailVerified: true,
		Name: "User " + strconv.Itoa(i), PreferredUsername: user,
		Groups: []string{"staff", "engineering", "realm-" + provider + "-users", "vpn"}, AuthTime: time.Now()}
	idToken := scaleIDToken(provider, sub, sid, id)
	token, err := srv.sessions.Create(ctx, id, session.Tokens{IDToken: idToken, RefreshToken: randomText(150), // 200 bytes
		Expiry: time.Now().Add(5 * time.Minute), SID: sid})
	if err != nil {
		b.Fatal(err)
	}
	keys := []string{subKey(provider, sub), sidKey(provider, sid)}
	if err := srv.store.IndexAdd(ctx, keys, token, time.Now().Add(DefaultLifetime)); err != nil {
		b.Fatal(err)
	}
	return len(idToken)
}

// scaleIndexSize is the heap that the back-channel logout index of the
// memory store takes for scaleSessions sessions (two keys each, as
// scaleSession adds them), measured on a store.Backend of its own.
func scaleIndexSize(b *testing.B) int64 {
	heap0, _ := memoryNow(b)
	m := store.NewMemoryBackend(time.Now)
	until := time.Now().Add(DefaultLifetime)
	for i := range scaleSessions {
		provider := fmt.Sprintf("realm-%04d", i%1000)
		if err := m.IndexAdd(b.Context(), []string{subKey(provider, uuid()), sidKey(provider, uuid())}, randomToken(), until); err != nil {
			b.Fatal(err)
		}
	}
	heap1, _ := memoryNow(b)
	runtime.KeepAlive(m)
	return heap1 - heap0
}

// scaleIDToken is an ID token as Keycloak issues it: an RS256 JWT with the
// standard claims, the profile, email and groups; the signature is random
// bytes of an RS256 signature's size (nothing verifies it here).
func scaleIDToken(provider, sub, sid string, id providers.Identity) string {
	now := time.Now().Unix()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": randomText(32)})
	payload, _ := json.Marshal(map[string]any{
		"exp": now + 300, "iat": now, "auth_time": now, "jti": uuid(),
		"iss": "https://login.example.com/realms/" + provider, "aud": "broker", "sub": sub, "typ": "ID",
		"azp": "broker", "nonce": randomText(32), "sid": sid, "at_hash": randomText(16), "acr": "1",
		"email_verified": true, "name": id.Name, "preferred_username": id.PreferredUsername,
		"given_name": "User", "family_name": strings.TrimPrefix(id.Name, "User "), "email": id.Email, "groups": id.Groups,
	})
	sig := make([]byte, 256) // RSA-2048
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig)
}

// scaleEncodedSize is the encoded size of one more session like the others,
// as the store keeps it.
func scaleEncodedSize(b *testing.B, srv *Server) int {
	id := providers.Identity{Provider: "realm-0042", Subject: uuid(), Email: "user42@realm-0042.example", EmailVerified: true,
		Name: "User 42", PreferredUsername: "user42", Groups: []string{"staff", "engineering", "realm-realm-0042-users", "vpn"}, AuthTime: time.Now()}
	sid := uuid()
	data, err := session.Encode(time.Now().Add(DefaultLifetime), id, session.Tokens{IDToken: scaleIDToken("realm-0042", id.Subject, sid, id),
		RefreshToken: randomText(150), Expiry: time.Now().Add(5 * time.Minute), SID: sid})
	if err != nil {
		b.Fatal(err)
	}
	return len(data)
}

// uuid is a random UUID-shaped string (a Keycloak subject or session id).
func uuid() string {
	u := make([]byte, 16)
	_, _ = rand.Read(u)
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// randomText is n random bytes, base64url-encoded.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// memoryNow collects garbage and returns the heap in use and the process's
// resident set size, in bytes.
func memoryNow(b *testing.B) (heap, rss int64) {
	runtime.GC()
	runtime.GC() // the second frees what the first only finalized
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				b.Fatalf("VmRSS: %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				b.Fatalf("VmRSS: %q", line)
			}
			return int64(ms.HeapInuse), kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0, 0
}
