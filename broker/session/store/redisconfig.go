package store

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v4"
)

// The Redis session store's settings (session.redis) and their checks; the
// store itself is in redis.go.

// RedisConfig configures the Redis session store (session.store: redis),
// which replicas share. docs/sessions.md describes it.
type RedisConfig struct {
	// Address is the server's host:port. Required with session.store: redis.
	Address string `yaml:"address"`
	// Username (Redis 6 ACL user) and Password authenticate the
	// connection; write the password as ${VAR}.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Database is the logical database (SELECT). Default 0.
	Database int `yaml:"database"`
	// TLS connects over TLS: `tls: true` with the system's roots, or the
	// settings in RedisTLS. Default off.
	TLS RedisTLS `yaml:"tls"`
	// DialTimeout bounds connecting (TCP, TLS, AUTH, SELECT). Default 2s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound each command's reply and request.
	// Default 2s each (redigo's own default is none: a hung server would
	// hang requests).
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolMaxIdle is how many idle connections are kept. Default 32 (at
	// most PoolMaxActive): fewer makes a busy replica dial Redis again and
	// again (16 concurrent checks dialled ~2,000 connections a second with 8).
	PoolMaxIdle int `yaml:"pool_max_idle"`
	// PoolMaxActive bounds the open connections. A request that finds
	// them all busy waits, for as long as one command may take at most
	// (dial + write + read timeouts), then fails with 503. Default 64.
	PoolMaxActive int `yaml:"pool_max_active"`
	// KeyPrefix starts every key the broker writes, so that several
	// brokers (or other applications) can share a database. Default
	// "oidc-broker:". Replicas of one broker must use the same one.
	KeyPrefix string `yaml:"key_prefix"`
}

// RedisTLS are the TLS settings of the Redis connection. In YAML it is
// either a boolean (`tls: true`: TLS with the system's roots) or a mapping
// of these settings, which turns TLS on.
type RedisTLS struct {
	// Enabled is true for `tls: true` or a mapping.
	Enabled bool `yaml:"-"`
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system's.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name to verify in the server's certificate, when
	// it differs from the address's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate: anyone on the network
	// path can then read and change every session (tokens included). For
	// tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// UnmarshalYAML accepts a boolean or a mapping (strictly: an unknown key is
// an error).
func (t *RedisTLS) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*t = RedisTLS{}
		return n.Load(&t.Enabled)
	}
	type redisTLS RedisTLS // without this method
	var p redisTLS
	if err := n.Load(&p, yaml.WithKnownFields()); err != nil {
		return err
	}
	*t = RedisTLS(p)
	t.Enabled = true
	return nil
}

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout       = 2 * time.Second
	DefaultRedisPoolMaxIdle   = 32
	DefaultRedisPoolMaxActive = 64
	DefaultRedisKeyPrefix     = "oidc-broker:"
)

// Problems checks the Redis settings (used: session.store is redis); each message starts with its
// field's path.
func (c RedisConfig) Problems(used bool) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("session.redis.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Address == "" && used:
		add("address", "is required with session.store: redis")
	case c.Address != "":
		if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" || !validPort(port) {
			add("address", "%q is not host:port", c.Address)
		}
	}
	if c.Database < 0 {
		add("database", "must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v < 0 {
			add(d.name, "must not be negative")
		}
	}
	if c.PoolMaxIdle < 0 {
		add("pool_max_idle", "must not be negative")
	}
	if c.PoolMaxActive < 0 {
		add("pool_max_active", "must not be negative")
	}
	if c.PoolMaxIdle > 0 && c.PoolMaxActive > 0 && c.PoolMaxIdle > c.PoolMaxActive {
		add("pool_max_idle", "%d is more than pool_max_active (%d)", c.PoolMaxIdle, c.PoolMaxActive)
	}
	if c.TLS.CAFile != "" {
		if _, err := loadCAFile(c.TLS.CAFile); err != nil {
			add("tls.ca_file", "%v", err)
		}
	}
	return errs
}

// warnings lists valid Redis settings that expose sessions.
func (c RedisConfig) Warnings() []string {
	var w []string
	if c.TLS.InsecureSkipVerify {
		w = append(w, "session.redis.tls.insecure_skip_verify: the Redis server's certificate is not checked: anyone on the network path can read and change sessions")
	}
	if host, _, err := net.SplitHostPort(c.Address); err == nil && !c.TLS.Enabled && !isLoopbackHost(host) {
		w = append(w, "session.redis: the connection to "+c.Address+" is not encrypted: sessions (tokens included) and the password cross the network in clear; set tls")
	}
	return w
}

func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%q holds no PEM certificate", path)
	}
	return pool, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p[0] >= '1' && p[0] <= '9'
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
