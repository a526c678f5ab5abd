package redisserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Sentinel is a redis-sentinel process under a test's control (Debian's
// redis-sentinel package; ./scripts/test installs it).
type Sentinel struct {
	*Server // Addr is its host:port on 127.0.0.1; Do runs a command on it
}

// SentinelOptions configure a sentinel.
type SentinelOptions struct {
	// Master is the name it monitors Primary under; Quorum sentinels must
	// agree that it is down (default 2).
	Master  string
	Primary string
	Quorum  int
	// DownAfter: the primary is down after not answering this long
	// (default 1s); FailoverTimeout bounds a failover (default 3s).
	DownAfter, FailoverTimeout time.Duration
	// Password, unless "", must be given by the sentinel's clients;
	// PrimaryPassword is what it gives the servers.
	Password, PrimaryPassword string
	// TLSCertFile and TLSKeyFile, when set, make the sentinel speak TLS
	// only, with this certificate, and connect to the servers and the
	// other sentinels over TLS.
	TLSCertFile, TLSKeyFile string
}

// StartSentinel runs a redis-sentinel for tb that monitors o.Primary, and
// waits until it answers PING. It is killed when tb ends.
func StartSentinel(tb testing.TB, o SentinelOptions) *Sentinel {
	tb.Helper()
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		tb.Fatalf("redis-sentinel is not installed (Debian package redis-sentinel): run ./scripts/test, which installs it")
	}
	if o.Quorum == 0 {
		o.Quorum = 2
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 3 * time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	host, pport, _ := net.SplitHostPort(o.Primary)
	dir := tb.TempDir()
	conf := []string{"bind 127.0.0.1", "dir " + dir, "loglevel warning"}
	if o.TLSCertFile != "" {
		conf = append(conf, "port 0", "tls-port "+port, "tls-cert-file "+o.TLSCertFile, "tls-key-file "+o.TLSKeyFile,
			"tls-auth-clients no", "tls-replication yes", "tls-ca-cert-file "+o.TLSCertFile)
	} else {
		conf = append(conf, "port "+port)
	}
	conf = append(conf,
		fmt.Sprintf("sentinel monitor %s %s %s %d", o.Master, host, pport, o.Quorum),
		fmt.Sprintf("sentinel down-after-milliseconds %s %d", o.Master, o.DownAfter.Milliseconds()),
		fmt.Sprintf("sentinel failover-timeout %s %d", o.Master, o.FailoverTimeout.Milliseconds()),
		fmt.Sprintf("sentinel parallel-syncs %s 1", o.Master),
	)
	if o.PrimaryPassword != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", o.Master, o.PrimaryPassword))
	}
	if o.Password != "" {
		conf = append(conf, "requirepass "+o.Password)
	}
	file := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(file, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: addr, tb: tb, dir: dir, opts: Options{Password: o.Password, TLSCertFile: o.TLSCertFile, TLSKeyFile: o.TLSKeyFile}, output: newBuffer()}
	tb.Cleanup(s.kill)
	s.run(exec.Command("redis-sentinel", file))
	return &Sentinel{Server: s}
}

// MasterAddr is the primary the sentinel names for master.
func (s *Sentinel) MasterAddr(master string) string {
	s.tb.Helper()
	a, err := redis.Strings(s.Do("SENTINEL", "get-master-addr-by-name", master), nil)
	if err != nil || len(a) != 2 {
		s.tb.Fatalf("sentinel: get-master-addr-by-name %s: %v %v", master, a, err)
	}
	return net.JoinHostPort(a[0], a[1])
}
