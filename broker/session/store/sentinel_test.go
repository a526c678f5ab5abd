package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// haSet is a primary, a replica and three sentinels on loopback.
type haSet struct {
	primary, replica *redisserver.Server
	sentinels        []*redisserver.Sentinel
}

const testMaster = "brokermaster"

// startHASet starts the servers and waits until the sentinels know the
// replica (a failover needs one).
func startHASet(t *testing.T, sentinelPassword string) haSet {
	t.Helper()
	h := haSet{primary: redisserver.Start(t)}
	h.replica = redisserver.StartWith(t, redisserver.Options{ReplicaOf: h.primary.Addr})
	waitFor(t, 20*time.Second, "the replica in sync", func() bool {
		info, _ := redis.String(h.replica.Do("INFO", "replication"), nil)
		return strings.Contains(info, "master_link_status:up")
	})
	for range 3 {
		h.sentinels = append(h.sentinels, redisserver.StartSentinel(t, redisserver.SentinelOptions{
			Master: testMaster, Primary: h.primary.Addr, Password: sentinelPassword}))
	}
	waitFor(t, 30*time.Second, "the sentinels know the replica and each other", func() bool {
		for _, s := range h.sentinels {
			m, _ := redis.Values(s.Do("SENTINEL", "master", testMaster), nil)
			f, _ := redis.StringMap(m, nil)
			if f["num-slaves"] != "1" || f["num-other-sentinels"] != "2" {
				return false
			}
		}
		return true
	})
	return h
}

func (h haSet) config() RedisConfig {
	var addrs []string
	for _, s := range h.sentinels {
		addrs = append(addrs, s.Addr)
	}
	return RedisConfig{KeyPrefix: "t:", Sentinel: SentinelConfig{Addresses: addrs, Master: testMaster}}
}

// TestSentinelFailover: the store finds the primary through the sentinels
// (the first one listed is down: the next is asked), and after a failover
// follows the new one without a restart: writes reach it (connections to
// the old one are dropped), the cache is emptied and subscribes again on the new primary, whose
// invalidations then reach it.
func TestSentinelFailover(t *testing.T) {
	h := startHASet(t, "sentinel-pw")
	cfg := h.config()
	cfg.Sentinel.Password = "sentinel-pw"
	cfg.Sentinel.Addresses = append([]string{"127.0.0.1:1"}, cfg.Sentinel.Addresses...) // down
	s, err := NewRedis(cfg, time.Minute, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := NewRedis(h.config().withPassword("sentinel-pw"), 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, tok := range []string{"a", "b"} {
		if err := s.Commit(tok, []byte("data-"+tok), exp); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.primary.currentAddr(); got != h.primary.Addr {
		t.Fatalf("primary %q, want %s", got, h.primary.Addr)
	}
	s.Subscribe()
	waitFor(t, 10*time.Second, "subscribed", s.Subscribed)
	readCached(t, s, "a")

	// A sentinel refuses (NOGOODSLAVE) until it has heard from the
	// replica lately enough.
	waitFor(t, 20*time.Second, "a failover started", func() bool {
		_, err := h.sentinels[0].Try("SENTINEL", "FAILOVER", testMaster)
		return err == nil
	})
	waitFor(t, 20*time.Second, "the store on the new primary", func() bool { return s.primary.currentAddr() == h.replica.Addr })
	if s.Cached("a") {
		t.Error("the cache kept a session across the failover")
	}
	// Writes reach the new one (the old primary is demoted within ten
	// seconds; until then it would take them, and lose them).
	for i := range 20 {
		if err := s.Commit("c", []byte{byte(i)}, exp); err != nil {
			t.Fatalf("write %d after the failover: %v", i, err)
		}
	}
	if b, _ := redis.Bytes(h.replica.Do("GET", "t:session:c"), nil); len(b) != 1 || b[0] != 19 {
		t.Errorf("the new primary holds %v, want the last write", b)
	}
	waitFor(t, 10*time.Second, "subscribed again", s.Subscribed)
	readCached(t, s, "b")
	if err := other.DeleteCtx(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the invalidation from the new primary", func() bool { return !s.Cached("b") })
}

func (c RedisConfig) withPassword(pw string) RedisConfig {
	c.Sentinel.Password = pw
	return c
}

// readCached reads token's session as a request does, until it is cached.
func readCached(t *testing.T, s *Redis, token string) {
	t.Helper()
	waitFor(t, 5*time.Second, "session "+token+" cached", func() bool {
		if _, found, err := s.FindCtx(WithCachedRead(context.Background(), token), token); !found || err != nil {
			t.Fatalf("session %s: %v %v", token, found, err)
		}
		return s.Cached(token)
	})
}

// TestSentinelRefusesReplica: a server that is not the primary is refused
// (ROLE), even when the sentinels name it: a sentinel's answer can be
// stale during a failover.
func TestSentinelRefusesReplica(t *testing.T) {
	h := startHASet(t, "")
	s, err := NewRedis(h.config(), 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.primary.moveTo(h.replica.Addr) // as a stale answer would
	c, err := s.primary.dialPrimary(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("a replica was accepted as the primary")
	}
	if !strings.Contains(err.Error(), "not the primary") {
		t.Errorf("error %v", err)
	}
	if err := s.Ping(context.Background()); err != nil { // asks the sentinels again
		t.Errorf("ping after a refused replica: %v", err)
	}
}

// TestSentinelTLS: the sentinels and the servers speak TLS only; the
// store checks the sentinels' certificate with sentinel.tls and the
// primary's with tls, each against its CA file. Without sentinel.tls
// the sentinels cannot be asked.
func TestSentinelTLS(t *testing.T) {
	cert, key := writeCert(t)
	primary := redisserver.StartWith(t, redisserver.Options{TLSCertFile: cert, TLSKeyFile: key})
	redisserver.StartWith(t, redisserver.Options{TLSCertFile: cert, TLSKeyFile: key, ReplicaOf: primary.Addr})
	var addrs []string
	for range 2 {
		s := redisserver.StartSentinel(t, redisserver.SentinelOptions{Master: testMaster, Primary: primary.Addr, Quorum: 1,
			TLSCertFile: cert, TLSKeyFile: key})
		addrs = append(addrs, s.Addr)
	}
	cfg := RedisConfig{KeyPrefix: "t:", TLS: RedisTLS{Enabled: true, CAFile: cert},
		Sentinel: SentinelConfig{Addresses: addrs, Master: testMaster, TLS: RedisTLS{Enabled: true, CAFile: cert}}}
	if p := cfg.Problems(true); len(p) > 0 {
		t.Fatal(p)
	}
	s, err := NewRedis(cfg, 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Commit("tok", []byte("data"), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("a write over TLS through TLS sentinels: %v", err)
	}
	if got := s.primary.currentAddr(); got != primary.Addr {
		t.Errorf("primary %q, want %s", got, primary.Addr)
	}
	cfg.Sentinel.TLS = RedisTLS{}
	plain, err := NewRedis(cfg, 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "sentinels") {
		t.Errorf("without sentinel.tls: %v; want the sentinels unreachable", err)
	}
}

// writeCert makes a self-signed certificate for 127.0.0.1 and returns its
// PEM files.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redis.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
