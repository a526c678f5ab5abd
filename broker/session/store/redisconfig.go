package store

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"
)

// The Redis session store's settings (session.redis) and their checks; the
// store itself is in redis.go.

// RedisConfig configures the Redis session store (session.store: redis),
// which replicas share. docs/sessions.md describes it.
type RedisConfig struct {
	// Address is the server's host:port. Required with session.store:
	// redis, unless Sentinel names the primary.
	Address string `yaml:"address"`
	// Sentinel, when set, finds the primary through Redis Sentinel instead
	// of Address, and follows it when it fails over (primary.go).
	Sentinel SentinelConfig `yaml:"sentinel"`
	// Wait makes the writes that must survive a failover wait until
	// replicas have them (WAIT). Default: one replica for up to 1s with
	// Sentinel, off without.
	Wait WaitConfig `yaml:"wait"`
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

// SentinelConfig says how to find the primary through Redis Sentinel.
// Username, Password and TLS are the sentinels' own: the data connections
// use RedisConfig's.
type SentinelConfig struct {
	// Addresses are the sentinels' host:port, asked in turn.
	Addresses []string `yaml:"addresses"`
	// Master is the name the sentinels monitor the primary under.
	Master string `yaml:"master"`
	// Username and Password authenticate to the sentinels (their
	// requirepass or ACL user); write the password as ${VAR}, or give
	// PasswordFile.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile holds the password instead (a Docker or Kubernetes
	// secret); one trailing newline is ignored.
	PasswordFile string `yaml:"password_file"`
	// TLS connects to the sentinels over TLS, as RedisConfig.TLS does to
	// Redis.
	TLS RedisTLS `yaml:"tls"`
}

// Enabled reports whether the sentinels are configured.
func (c SentinelConfig) Enabled() bool { return len(c.Addresses) > 0 || c.Master != "" }

// WaitConfig bounds the wait for replicas after a write that must survive
// a failover (a session written at login, a deletion, an index entry, a
// single-use mark).
type WaitConfig struct {
	// Replicas is how many replicas must have the write. nil: 1 with
	// Sentinel, 0 (no wait) without.
	Replicas *int `yaml:"replicas"`
	// Timeout bounds the wait. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultWaitTimeout is session.redis.wait.timeout's default.
const DefaultWaitTimeout = time.Second

// waitFor is the number of replicas and the bound that writes wait for.
func (c RedisConfig) waitFor() (int, time.Duration) {
	n := 0
	if c.Sentinel.Enabled() {
		n = 1
	}
	if c.Wait.Replicas != nil {
		n = *c.Wait.Replicas
	}
	return n, orDefault(c.Wait.Timeout, DefaultWaitTimeout)
}

// Set reports whether any Redis setting is given.
func (c RedisConfig) Set() bool { return !reflect.DeepEqual(c, RedisConfig{}) }

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
	case c.Address != "" && c.Sentinel.Enabled():
		add("address", "must not be set with sentinel: the sentinels name the primary")
	case c.Address == "" && used && !c.Sentinel.Enabled():
		add("address", "is required with session.store: redis (or sentinel)")
	case c.Address != "" && !validAddress(c.Address):
		add("address", "%q is not host:port", c.Address)
	}
	errs = append(errs, c.Sentinel.problems()...)
	if c.Wait.Replicas != nil && *c.Wait.Replicas < 0 {
		add("wait.replicas", "must not be negative (0 waits for none)")
	}
	if read := orDefault(c.ReadTimeout, DefaultRedisTimeout); c.Wait.Timeout < 0 {
		add("wait.timeout", "must not be negative")
	} else if n, wait := c.waitFor(); n > 0 && wait >= read {
		add("wait.timeout", "%v must be shorter than read_timeout (%v), which bounds the wait's reply", wait, read)
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
	if c.unpinnedTLS() {
		add("tls", "with sentinel and without sentinel.tls, the certificate is checked against the host the sentinels name, "+
			"and anyone on the path to them can name any host with a publicly trusted certificate (which then receives the password): "+
			"set tls.server_name or tls.ca_file, or sentinel.tls")
	}
	return errs
}

// unpinnedTLS: the primary's certificate is checked only against the name
// the sentinels give, over connections that do not prove who answers
// (sentinels reached in clear, not on loopback), and against the system's
// roots: a spoofed answer could name any host with a public certificate.
func (c RedisConfig) unpinnedTLS() bool {
	if !c.Sentinel.Enabled() || !c.TLS.Enabled || c.TLS.ServerName != "" || c.TLS.CAFile != "" || c.TLS.InsecureSkipVerify || c.Sentinel.TLS.Enabled {
		return false
	}
	for _, a := range c.Sentinel.Addresses {
		if host, _, err := net.SplitHostPort(a); err == nil && !isLoopbackHost(host) {
			return true
		}
	}
	return false
}

// problems checks the sentinel settings.
func (c SentinelConfig) problems() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("session.redis.sentinel.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !c.Enabled() {
		if c.Username != "" || c.Password != "" || c.PasswordFile != "" || c.TLS != (RedisTLS{}) {
			add("addresses", "is required when other sentinel settings are given")
		}
		return errs
	}
	if len(c.Addresses) == 0 {
		add("addresses", "is required with sentinel: at least one sentinel's host:port")
	}
	for i, a := range c.Addresses {
		if !validAddress(a) {
			add(fmt.Sprintf("addresses[%d]", i), "%q is not host:port", a)
		}
	}
	if c.Master == "" {
		add("master", "is required with sentinel: the name the sentinels monitor the primary under")
	}
	if _, err := c.password(); err != nil {
		add("password_file", "%v", err)
	}
	if c.TLS.CAFile != "" {
		if _, err := loadCAFile(c.TLS.CAFile); err != nil {
			add("tls.ca_file", "%v", err)
		}
	}
	return errs
}

// password is Password, or the content of PasswordFile.
func (c SentinelConfig) password() (string, error) {
	switch {
	case c.PasswordFile == "":
		return c.Password, nil
	case c.Password != "":
		return "", errors.New("set password or password_file, not both")
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", c.PasswordFile, errors.Unwrap(err))
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("%q is empty", c.PasswordFile)
	}
	return p, nil
}

func validAddress(a string) bool {
	host, port, err := net.SplitHostPort(a)
	return err == nil && host != "" && validPort(port)
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
	if c.Sentinel.TLS.InsecureSkipVerify {
		w = append(w, "session.redis.sentinel.tls.insecure_skip_verify: the sentinels' certificates are not checked: anyone on the network path can name another server as the primary")
	}
	for _, a := range c.Sentinel.Addresses {
		if host, _, err := net.SplitHostPort(a); err == nil && !c.Sentinel.TLS.Enabled && !isLoopbackHost(host) {
			w = append(w, "session.redis.sentinel: the connection to "+a+" is not encrypted: anyone on the network path can name another server as the primary; set sentinel.tls")
			break
		}
	}
	if n, _ := c.waitFor(); c.Sentinel.Enabled() && n == 0 {
		w = append(w, "session.redis.wait.replicas: 0 with sentinel: a session written, or ended, just before a failover can be lost with the primary (docs/sessions.md#high-availability)")
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
