//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/broker/session"
	"github.com/oidc-broker/oidc-broker/broker/session/store"
	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
	"github.com/oidc-broker/oidc-broker/providers"
)

// Scale with Redis: many sessions in one redis-server, written through the
// broker's store as logins leave them (the encoded session, its expiry, the
// back-channel index by sub and by sid), then what they cost and what a
// request costs among them. By default 10,000 sessions (seconds, for CI);
// SCALE_SESSIONS sets the count, up to scaleMaxSessions (1,000,000 take a
// few minutes and about 1.5 GB of Redis memory).
const (
	scaleDefaultSessions = 10_000
	scaleMaxSessions     = 2_000_000
	scaleWriters         = 16  // concurrent writers (the store's pool has 64 connections)
	scaleManySessions    = 100 // one user has this many sessions (back-channel logout by sub)
	scaleRequests        = 2_000
)

// TestScaleRedisSessions writes the sessions, then reports, in the log and
// in perf-scale-redis.txt (artifact directory):
//
//   - Redis's memory per session (INFO memory's used_memory, before and
//     after), and MEMORY USAGE of one session's keys;
//   - forward-auth's latency on the real broker binary with that Redis,
//     over HTTP with keep-alive, one request at a time: one session again
//     and again (the session cache answers), and a different session each
//     time with session.cache_ttl: 0 (a GET from Redis each time);
//   - back-channel logout by sub, as the broker's handler runs it on the
//     store (the index's tokens, then for each a revocation mark, a read and
//     a deletion, then the index key), for a user with one session and for
//     one with scaleManySessions.
//
// It asserts that every check is answered 202 for its user and that the
// sessions a logout ends are gone, not the figures.
func TestScaleRedisSessions(t *testing.T) {
	n := envInt(t, "SCALE_SESSIONS", scaleDefaultSessions, scaleMaxSessions)
	rs := redisserver.Start(t)
	st, err := store.NewRedis(store.RedisConfig{Address: rs.Addr, ReadTimeout: 10 * time.Second}, 0, time.Now,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()
	used0 := redisUsedMemory(t, rs)

	start := time.Now()
	tokens := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range scaleWriters {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				tok, err := writeScaleSession(ctx, st, i)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				tokens[i] = tok
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("writing the sessions: %v", *err)
	}
	writing := time.Since(start)
	used1 := redisUsedMemory(t, rs)
	keys, _ := redis.Int(rs.Do("DBSIZE"), nil)
	one := redisKeyUsage(rs, "oidc-broker:session:"+tokens[n-1])
	strlen, _ := redis.Int(rs.Do("STRLEN", "oidc-broker:session:"+tokens[n-1]), nil)
	index := redisKeyUsage(rs, "oidc-broker:index:sub:local:"+scaleSubject(n-1)) +
		redisKeyUsage(rs, "oidc-broker:index:sid:local:"+scaleSID(n-1))

	// Forward-auth with that Redis: the session cache on (the default) and
	// off.
	bin := buildPerfBroker(t)
	dir := t.TempDir()
	htpasswd := writeHtpasswd(t, dir, "alice", loadPassword)
	cached, _ := startServeWith(t, bin, writeLoadConfig(t, filepath.Join(dir, "cached.yaml"), htpasswd,
		fmt.Sprintf("session:\n  store: redis\n  redis:\n    address: %q\n", rs.Addr)))
	uncached, _ := startServeWith(t, bin, writeLoadConfig(t, filepath.Join(dir, "uncached.yaml"), htpasswd,
		fmt.Sprintf("session:\n  store: redis\n  cache_ttl: 0s\n  redis:\n    address: %q\n", rs.Addr)))
	client := &http.Client{Timeout: 10 * time.Second}
	same := scaleLatencies(t, client, cached.URL, func(int) int { return n / 2 }, tokens)
	spread := scaleLatencies(t, client, uncached.URL, func(k int) int { return (k*7919 + 13) % n }, tokens)

	// Back-channel logout by sub: the user with one session, and the one
	// with scaleManySessions (sessions 0 to scaleManySessions-1).
	byOne := scaleLogoutBySub(t, st, scaleSubject(n-1), 1)
	byMany := scaleLogoutBySub(t, st, scaleSubject(0), min(scaleManySessions, n))

	const mb = 1 << 20
	var b strings.Builder
	fmt.Fprintf(&b, "scale: %d sessions in one redis-server, written through the store (%d writers) in %v; %d CPUs, %s\n",
		n, scaleWriters, writing.Round(time.Second), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "each: a local identity (4 groups), a 1.2 KB RS256 ID token, a 200-byte refresh token, a sid; indexed by sub and sid\n")
	fmt.Fprintf(&b, "Redis used_memory: %.1f MB before, %.1f MB after: %d bytes a session (%d keys)\n",
		float64(used0)/mb, float64(used1)/mb, (used1-used0)/int64(n), keys)
	fmt.Fprintf(&b, "one session: %d bytes stored, MEMORY USAGE %d; its two index keys: MEMORY USAGE %d\n", strlen, one, index)
	fmt.Fprintf(&b, "forward-auth, one request at a time over keep-alive (median / p99 of %d):\n", scaleRequests)
	fmt.Fprintf(&b, "  one session, session cache on:              %v / %v\n", same.median, same.p99)
	fmt.Fprintf(&b, "  a different session each time, cache off:   %v / %v\n", spread.median, spread.p99)
	fmt.Fprintf(&b, "back-channel logout by sub (the store's part): 1 session %v, %d sessions %v\n",
		byOne.Round(time.Microsecond), min(scaleManySessions, n), byMany.Round(time.Microsecond))
	t.Log("\n" + b.String())
	writeArtifact(t, "perf-scale-redis.txt", b.String())
}

// scaleSubject and scaleSID are session i's user and IdP session: the
// first scaleManySessions sessions are one user's.
func scaleSubject(i int) string {
	if i < scaleManySessions {
		return "many"
	}
	return "user" + strconv.Itoa(i)
}

func scaleSID(i int) string { return fmt.Sprintf("sid-%08d", i) }

// writeScaleSession writes session i as a login through an OpenID provider
// leaves it (finishLogin): the encoded session with its expiry, and its
// index entries by sub and by sid (the broker's key names).
func writeScaleSession(ctx context.Context, st *store.Redis, i int) (string, error) {
	sub := scaleSubject(i)
	id := providers.Identity{Provider: "local", Subject: sub, Email: sub + "@example.com", EmailVerified: true,
		Name: "User " + strconv.Itoa(i), PreferredUsername: sub,
		Groups: []string{"staff", "engineering", "users", "vpn"}, AuthTime: time.Now()}
	deadline := time.Now().Add(24 * time.Hour)
	tok := session.Tokens{IDToken: scaleJWT(id, scaleSID(i)), RefreshToken: scaleRandom(150),
		Expiry: time.Now().Add(time.Hour), SID: scaleSID(i)}
	b, err := session.Encode(deadline, id, tok)
	if err != nil {
		return "", err
	}
	token := scaleRandom(32)
	if err := st.CommitCtx(ctx, token, b, deadline); err != nil {
		return "", err
	}
	return token, st.IndexAdd(ctx, []string{"sub:local:" + sub, "sid:local:" + scaleSID(i)}, token, deadline)
}

// scaleJWT is an ID token as Keycloak issues it (the claims of
// broker's scaleIDToken): RS256-sized, with a random signature (nothing
// verifies it here).
func scaleJWT(id providers.Identity, sid string) string {
	now := time.Now().Unix()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": scaleRandom(32)})
	payload, _ := json.Marshal(map[string]any{
		"exp": now + 300, "iat": now, "auth_time": now, "jti": scaleRandom(16),
		"iss": "https://login.example.com/realms/example", "aud": "broker", "sub": id.Subject, "typ": "ID",
		"azp": "broker", "nonce": scaleRandom(32), "sid": sid, "at_hash": scaleRandom(16), "acr": "1",
		"email_verified": true, "name": id.Name, "preferred_username": id.PreferredUsername,
		"given_name": "User", "family_name": strings.TrimPrefix(id.Name, "User "), "email": id.Email, "groups": id.Groups,
	})
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig)
}

func scaleRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type latencies struct{ median, p99 time.Duration }

// scaleLatencies times scaleRequests forward-auth checks, one at a time,
// the k-th with session pick(k), after 100 unmeasured ones.
func scaleLatencies(t *testing.T, c *http.Client, base string, pick func(int) int, tokens []string) latencies {
	t.Helper()
	var d []time.Duration
	for k := range scaleRequests + 100 {
		i := pick(k)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/oauth2/auth", nil)
		req.Header.Set("Cookie", "oidc_broker="+tokens[i])
		start := time.Now()
		resp, err := c.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := "local:" + scaleSubject(i); resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Auth-Request-User") != want {
			t.Fatalf("session %d: forward-auth %d, user %q; want 202 for %s", i, resp.StatusCode, resp.Header.Get("X-Auth-Request-User"), want)
		}
		if k >= 100 {
			d = append(d, took)
		}
	}
	slices.Sort(d)
	return latencies{median: d[len(d)/2].Round(time.Microsecond), p99: d[int(math.Ceil(0.99*float64(len(d))))-1].Round(time.Microsecond)}
}

// scaleLogoutBySub ends every session of sub as the broker's back-channel
// logout does on the store (backchannel.go's endSessionsOf, sessionend.go's
// endStoredSession and revoke), times it, and checks that want sessions
// ended and are gone.
func scaleLogoutBySub(t *testing.T, st *store.Redis, sub string, want int) time.Duration {
	t.Helper()
	ctx := t.Context()
	key := "sub:local:" + sub
	start := time.Now()
	toks, err := st.IndexTokens(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, tok := range toks {
		if err := st.IndexAdd(ctx, []string{"revoked:" + tok}, tok, time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, found, err := st.FindCtx(ctx, tok); err != nil {
			t.Fatal(err)
		} else if found {
			if err := st.DeleteCtx(ctx, tok); err != nil {
				t.Fatal(err)
			}
			ended++
		}
	}
	if err := st.IndexRemove(ctx, key); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if ended != want {
		t.Errorf("logout of %s ended %d sessions, want %d", sub, ended, want)
	}
	for _, tok := range toks {
		if _, found, _ := st.FindCtx(ctx, tok); found {
			t.Errorf("a session of %s is still there", sub)
		}
	}
	return took
}

func redisUsedMemory(t *testing.T, rs *redisserver.Server) int64 {
	t.Helper()
	info, err := redis.String(rs.Do("INFO", "memory"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

func redisKeyUsage(rs *redisserver.Server, key string) int {
	n, _ := redis.Int(rs.Do("MEMORY", "USAGE", key, "SAMPLES", "0"), nil)
	return n
}
