package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/FZambia/sentinel"
	"github.com/gomodule/redigo/redis"
)

// primary dials the Redis primary: the configured address, or the one the
// sentinels name (Redis's "Sentinel clients" guidelines: ask the sentinels
// in turn, check ROLE, ask again on connection errors and READONLY, and
// follow +switch-master).
//
// Every connection carries the generation it was dialed in. A failover, or
// a failure that may mean one (a dead connection, READONLY), starts a new
// generation, and the pool drops older connections when it would hand
// them out (redigo's TestOnBorrowContext): no request reuses a connection to
// a server that restarted, died or was demoted.
//
// github.com/FZambia/sentinel asks the sentinels (its Dial is ours, with
// their credentials, TLS and time limits). It has no context and no
// +switch-master subscription: lookups are serialised here (which also
// keeps its address list from being reordered under a concurrent lookup)
// and a caller waits for one only as long as its context allows; watch
// subscribes.
type primary struct {
	addr     string             // fixed: no sentinels
	sentinel *sentinel.Sentinel // nil without sentinels
	master   string
	sentAddr []string
	opts     []redis.DialOption // the data connections'
	sentOpts []redis.DialOption // the sentinels' connections'
	ping     time.Duration      // of the +switch-master subscription
	connect  time.Duration      // every TCP connect's bound (session.redis.dial_timeout)
	read     time.Duration
	log      *slog.Logger
	// onSwitch runs after the primary moved to another server: the
	// session cache is emptied and resubscribed, the journal written
	// again.
	onSwitch func()

	gen    atomic.Uint64
	lookup chan struct{} // held while the sentinels are asked

	mu       sync.Mutex
	current  string    // the primary the sentinels named; "" asks them again
	known    string    // the last primary they named, to notice a switch
	lookedUp time.Time // when they were last asked

	watchOnce sync.Once
	ctx       context.Context // canceled by close
	cancel    context.CancelFunc
	watchDone chan struct{}
	errs      ErrorLog
}

// errNotPrimary: the server the sentinels named is no (longer the) primary.
var errNotPrimary = errors.New("not the primary")

// ErrCluster: the server is a Redis Cluster node, which the store refuses
// (docs/sessions.md#redis-cluster).
var ErrCluster = errors.New("is a Redis Cluster node (cluster_enabled:1): Redis Cluster is not supported; use one primary, with Sentinel for failover (docs/sessions.md#redis-cluster)")

// ErrVersion: the server is older than Redis 7.0, whose commands the store
// sends (SET with NX and GET; SET with PXAT is 6.2's). Valkey reports a
// redis_version of 7.2 and later.
var ErrVersion = errors.New("is older than Redis 7.0, which the session store needs (SET with NX and GET, PXAT; docs/sessions.md#servers-tested)")

// minRedisMajor is the oldest Redis major version the store works with.
const minRedisMajor = 7

// checkVersion reads redis_version from an INFO server reply: an error
// naming the server and its version when it is older than minRedisMajor.
// A reply without the field (a proxy that hides it) passes: the commands
// themselves then say what they need (versionHint).
func checkVersion(info, addr string) error {
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		major, _, _ := strings.Cut(v, ".")
		if n, err := strconv.Atoi(major); err == nil && n < minRedisMajor {
			return fmt.Errorf("%s (redis_version %s) %w", addr, v, ErrVersion)
		}
		return nil
	}
	return nil
}

func newPrimary(cfg RedisConfig, opts []redis.DialOption, timeouts [3]time.Duration, log *slog.Logger) (*primary, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &primary{addr: cfg.Address, opts: opts, ping: subscriptionPing, connect: timeouts[0], read: timeouts[1], log: log,
		lookup: make(chan struct{}, 1), ctx: ctx, cancel: cancel, watchDone: make(chan struct{}),
		errs: ErrorLog{Interval: time.Minute}, onSwitch: func() {}}
	sc := cfg.Sentinel
	if !sc.Enabled() {
		return p, nil
	}
	pw, err := sc.password()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("store: session.redis.sentinel.password_file: %w", err)
	}
	p.sentOpts = []redis.DialOption{redis.DialConnectTimeout(timeouts[0]), redis.DialReadTimeout(timeouts[1]),
		redis.DialWriteTimeout(timeouts[2]), redis.DialUsername(sc.Username), redis.DialPassword(pw)}
	if sc.TLS.Enabled {
		tc, err := tlsConfig(sc.TLS, "") // redigo names each sentinel's host, unless set
		if err != nil {
			cancel()
			return nil, fmt.Errorf("store: session.redis.sentinel.tls.ca_file: %w", err)
		}
		p.sentOpts = append(p.sentOpts, redis.DialUseTLS(true), redis.DialTLSConfig(tc))
	}
	p.master, p.sentAddr = sc.Master, slices.Clone(sc.Addresses)
	p.sentinel = &sentinel.Sentinel{Addrs: slices.Clone(sc.Addresses), MasterName: sc.Master,
		Dial: func(addr string) (redis.Conn, error) { return p.dialSentinel(context.Background(), addr) }}
	return p, nil
}

// tlsConfig is the TLS configuration of t; the server name defaults to
// host, or when "" to the host of the address dialed (redigo's default).
func tlsConfig(t RedisTLS, host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if t.CAFile != "" {
		roots, err := loadCAFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = roots
	}
	return tc, nil
}

// dialSentinel connects to the sentinel at addr.
func (p *primary) dialSentinel(ctx context.Context, addr string, extra ...redis.DialOption) (redis.Conn, error) {
	return redis.DialContext(ctx, "tcp", addr, append(slices.Clip(p.sentOpts), extra...)...)
}

// close stops the +switch-master subscription.
func (p *primary) close() {
	p.cancel()
	p.watchOnce.Do(func() { close(p.watchDone) }) // never started
	select {
	case <-p.watchDone:
	case <-time.After(p.ping + p.read):
	}
	if p.sentinel != nil {
		_ = p.sentinel.Close()
	}
}

// netDial makes a TCP connection within the configured connect timeout:
// redigo's DialConnectTimeout bounds only its own dialer, not one given
// with DialContextFunc.
func (p *primary) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: p.connect, KeepAlive: 5 * time.Minute} // redigo's keep-alive
	return d.DialContext(ctx, network, addr)
}

// conn is a connection to the primary, the generation it was dialed in,
// and what it has written.
type conn struct {
	fullConn
	gen  uint64
	sent *sentConn
	read time.Duration // the read timeout (session.redis.read_timeout)
}

// DoContext runs the command in the caller's goroutine, where redigo's
// starts a goroutine for each command and waits for it or for ctx's end,
// whichever comes first (a goroutine, a channel and two more switches a
// round trip). Here the wait itself ends with ctx: the reply's read is
// bounded by ctx's deadline (and the read timeout), as redigo bounds its
// goroutine's, and ctx's cancellation closes the connection, which ends a
// write or read in progress; redigo closes it too (after the fact). A
// command cut short by ctx returns ctx's error, as redigo's does, which is
// not a dead server's (failoverError).
func (c *conn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	timeout := c.read
	dl, ok := ctx.Deadline()
	if ok {
		left := time.Until(dl)
		if left <= 0 {
			_ = c.fullConn.Close()
			return nil, context.DeadlineExceeded
		}
		if left < timeout || timeout == 0 {
			timeout = left
		}
	}
	if err := ctx.Err(); err != nil {
		_ = c.fullConn.Close()
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.fullConn.Close() })
	r, err := c.fullConn.DoWithTimeout(timeout, cmd, args...)
	if !stop() {
		// ctx ended: the connection is being closed by AfterFunc's
		// goroutine. Closed here too, before the pool can take it back and
		// lend it, closed a moment later, to another command.
		_ = c.fullConn.Close()
		if err == nil {
			return r, nil
		}
		return nil, ctx.Err()
	}
	if err != nil && ok && !time.Now().Before(dl) { // ctx's deadline, not yet seen by ctx
		return nil, context.DeadlineExceeded
	}
	return r, err
}

// sentConn counts the bytes its writes handed to the kernel: a command
// that failed while the count stood still never reached the server, and
// may run again without running twice.
type sentConn struct {
	net.Conn
	n atomic.Int64
}

func (c *sentConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// borrowed is where the pool's dial and TestOnBorrowContext leave the
// connection they hand to one request (found through the request's
// context), so that the request can tell whether its command was sent.
type borrowed struct {
	c *conn
	// once: the command must not run twice (doUnsent), so the
	// connection is checked for the server's close before it is lent.
	once bool
}

type borrowedKey struct{}

// lend records c as the connection the request of ctx borrows.
func lend(ctx context.Context, c redis.Conn) {
	if b, ok := ctx.Value(borrowedKey{}).(*borrowed); ok {
		b.c, _ = c.(*conn)
	}
}

// written is what the borrowed connection has written so far (-1: unknown).
func (b *borrowed) written() int64 {
	if b.c == nil || b.c.sent == nil {
		return -1
	}
	return b.c.sent.n.Load()
}

// fullConn is what redigo's connections implement.
type fullConn interface {
	redis.ConnWithTimeout
	redis.ConnWithContext
}

// dial connects to the primary for the pool.
func (p *primary) dial(ctx context.Context) (redis.Conn, error) {
	gen := p.gen.Load()
	var sent *sentConn
	c, err := p.dialPrimary(ctx, redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := p.netDial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sent = &sentConn{Conn: nc}
		return sent, nil
	}))
	if err != nil {
		return nil, err
	}
	fc, ok := c.(fullConn)
	if !ok {
		c.Close()
		return nil, errors.New("redigo's connection lacks timeouts or contexts")
	}
	pc := &conn{fullConn: fc, gen: gen, sent: sent, read: p.read}
	lend(ctx, pc)
	return pc, nil
}

// stale reports whether c was dialed before the last failover or failure.
func (p *primary) stale(c redis.Conn) bool {
	pc, ok := c.(*conn)
	return ok && pc.gen != p.gen.Load()
}

// dialPrimary connects to the primary (extra options after the configured
// ones) and checks it: ROLE is master when the sentinels named it, and it
// is no cluster node.
func (p *primary) dialPrimary(ctx context.Context, extra ...redis.DialOption) (redis.Conn, error) {
	addr, err := p.address(ctx)
	if err != nil {
		return nil, err
	}
	if p.sentinel != nil {
		p.watchOnce.Do(func() { go p.watch() })
	}
	c, err := redis.DialContext(ctx, "tcp", addr, append(slices.Clip(p.opts), extra...)...)
	if err != nil {
		p.failed(err)
		return nil, err
	}
	if err := p.check(ctx, c, addr); err != nil {
		c.Close()
		p.failed(err)
		return nil, err
	}
	return c, nil
}

// check asks the server its role (with sentinels), its version and
// whether it is a cluster node, in one round trip. A user without the
// right to INFO skips the version and cluster checks.
func (p *primary) check(ctx context.Context, c redis.Conn, addr string) error {
	if p.sentinel != nil {
		_ = c.Send("ROLE")
	}
	_ = c.Send("INFO", "server")
	_ = c.Send("INFO", "cluster")
	if err := c.Flush(); err != nil {
		return err
	}
	if p.sentinel != nil {
		role, err := redis.Values(redis.ReceiveContext(c, ctx))
		if err != nil {
			return fmt.Errorf("ROLE: %w", err)
		}
		if r, _ := redis.String(role[0], nil); r != "master" {
			return fmt.Errorf("%s is %w: its ROLE is %q", addr, errNotPrimary, r)
		}
	}
	server, err := redis.String(redis.ReceiveContext(c, ctx))
	var re redis.Error
	switch {
	case errors.As(err, &re) && strings.HasPrefix(string(re), "NOPERM"):
	case err != nil:
		return fmt.Errorf("INFO server: %w", err)
	default:
		if err := checkVersion(server, addr); err != nil {
			return err
		}
	}
	info, err := redis.String(redis.ReceiveContext(c, ctx))
	switch {
	case errors.As(err, &re) && strings.HasPrefix(string(re), "NOPERM"):
	case err != nil:
		return fmt.Errorf("INFO cluster: %w", err)
	case strings.Contains(info, "cluster_enabled:1"):
		return fmt.Errorf("%s %w", addr, ErrCluster)
	}
	return nil
}

// address is the primary's: the configured one, or the sentinels'.
func (p *primary) address(ctx context.Context) (string, error) {
	if p.sentinel == nil {
		return p.addr, nil
	}
	if a := p.currentAddr(); a != "" {
		return a, nil
	}
	select {
	case p.lookup <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-p.lookup }()
	if a := p.currentAddr(); a != "" { // another caller asked meanwhile
		return a, nil
	}
	// While the primary is down every dial fails and asks again: the
	// sentinels' answer of the last lookupInterval stands for them all.
	p.mu.Lock()
	recent, known := time.Since(p.lookedUp) < lookupInterval, p.known
	p.mu.Unlock()
	if recent && known != "" {
		return known, nil
	}
	addr, err := p.sentinel.MasterAddr()
	p.mu.Lock()
	p.lookedUp = time.Now()
	p.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("sentinels %v, master %q: %w", p.sentAddr, p.master, err)
	}
	p.moveTo(addr)
	return addr, nil
}

// lookupInterval: the sentinels are asked at most this often on the
// requests' behalf (the +switch-master subscription brings a failover at
// once in any case).
const lookupInterval = 100 * time.Millisecond

func (p *primary) currentAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

// moveTo records addr as the primary; a new server starts a new
// generation and runs onSwitch.
func (p *primary) moveTo(addr string) {
	p.mu.Lock()
	old := p.known
	p.current, p.known = addr, addr
	p.mu.Unlock()
	if old == addr || old == "" {
		return
	}
	p.gen.Add(1)
	p.log.Warn("session store: the Redis primary moved", "from", old, "to", addr, "master", p.master)
	p.onSwitch()
}

// failed records a failure of a command or a dial and reports whether it
// may mean a dead connection or a moved primary, so that the command may
// run again on a fresh connection. Such a failure starts a new generation,
// and with sentinels the next dial asks them again.
func (p *primary) failed(err error) bool {
	if !failoverError(err) {
		return false
	}
	p.gen.Add(1)
	if p.sentinel != nil {
		p.mu.Lock()
		p.current = ""
		p.mu.Unlock()
	}
	return true
}

// refused reports whether err is the server's refusal of a write because
// it is no (longer the) primary, or not ready: the write was not done.
func refused(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := string(re)
	return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") || strings.Contains(msg, "READONLY")
}

// failoverError: the connection is dead, or the server is no longer (or
// not yet) the primary. The request's own deadline and a full pool are
// not.
func failoverError(err error) bool {
	var re redis.Error
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, redis.ErrPoolExhausted), errors.Is(err, ErrCluster), errors.Is(err, ErrVersion):
		return false
	case errors.As(err, &re):
		return refused(err)
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, errNotPrimary):
		return true
	}
	return false
}
