package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ldapIdleTimeout is how long an unused connection stays open. Directories
// close idle connections themselves (Active Directory after 15 minutes);
// a minute keeps the pool warm during a burst of sign-ins without holding
// connections for a provider that a reload replaced.
const ldapIdleTimeout = time.Minute

// errPoolBusy: every connection was in use for as long as a sign-in may
// wait for one.
var errPoolBusy = errors.New("all connections to the directory are busy")

// pool holds the connections to one directory: at most max at once,
// the idle ones reused (newest first) and closed after ldapIdleTimeout.
// Each connection remembers whom it is bound as, so the service account
// binds again only after a user's bind took the connection over.
//
// It is safe for concurrent use.
type pool struct {
	urls      []string
	startTLS  bool
	tls       *tls.Config
	dialWait  time.Duration
	opTimeout time.Duration
	bindDN    string
	password  string

	slots     chan struct{} // one per connection in use
	preferred atomic.Int32  // the index of the URL that answered last

	mu    sync.Mutex
	idle  []*conn
	sweep *time.Timer
}

func newPool(s settings) *pool {
	return &pool{urls: s.URLs, startTLS: s.StartTLS, tls: s.tls, dialWait: s.DialTimeout, opTimeout: s.Timeout,
		bindDN: s.BindDN, password: s.password, slots: make(chan struct{}, s.MaxConnections)}
}

// conn is one connection and what the pool knows about it.
type conn struct {
	*ldap.Conn
	pool      *pool
	bound     string // the DN it is bound as; "" when anonymous or unknown
	idleSince time.Time
	reused    bool // taken from the idle list, so possibly closed by the server meanwhile
	done      int  // operations that succeeded during this use
}

// run calls fn with a connection, closing it if ctx ends first. When the
// first operation on a reused connection fails because the connection is
// broken (the directory restarted, or closed it while idle), the idle
// connections are dropped and fn runs once more on a new one: nothing of
// fn's has reached the directory then.
func (p *pool) run(ctx context.Context, fn func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = fn(c)
		aborted := !stop()
		broken := aborted || c.broken(err)
		retry := attempt == 0 && c.reused && c.done == 0 && broken && !aborted
		p.put(c, !broken)
		switch {
		case retry:
			p.flushIdle()
			continue
		case aborted && err == nil:
			err = ctx.Err()
		}
		return err
	}
}

// get takes a free slot (waiting at most the operation timeout) and an idle
// connection, or dials a new one.
func (p *pool) get(ctx context.Context) (*conn, error) {
	wait := time.NewTimer(p.opTimeout)
	defer wait.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-wait.C:
		return nil, errPoolBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c := p.takeIdle(); c != nil {
		return c, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// put returns c to the idle list when it is still usable, or closes it.
func (p *pool) put(c *conn, usable bool) {
	defer func() { <-p.slots }()
	if !usable || c.IsClosing() {
		c.Close()
		return
	}
	c.idleSince, c.done = time.Now(), 0
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(ldapIdleTimeout, p.sweepIdle)
	}
}

func (p *pool) takeIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.IsClosing() || time.Since(c.idleSince) > ldapIdleTimeout {
			c.Close()
			continue
		}
		c.reused = true
		return c
	}
	return nil
}

// sweepIdle closes the connections idle for longer than ldapIdleTimeout,
// and runs again while any are left: a pool nobody uses any more (its
// provider was replaced by a reload) ends up with none open.
func (p *pool) sweepIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.idle[:0]
	for _, c := range p.idle {
		if time.Since(c.idleSince) > ldapIdleTimeout || c.IsClosing() {
			c.Close()
			continue
		}
		kept = append(kept, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.sweep = nil
	if len(p.idle) > 0 {
		p.sweep = time.AfterFunc(ldapIdleTimeout, p.sweepIdle)
	}
}

// flushIdle closes every idle connection.
func (p *pool) flushIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// dial connects to the first URL that answers, beginning with the one that
// answered last.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	first := int(p.preferred.Load())
	var errs []error
	for i := range p.urls {
		n := (first + i) % len(p.urls)
		c, err := p.dialURL(ctx, p.urls[n])
		if err == nil {
			p.preferred.Store(int32(n))
			return &conn{Conn: c, pool: p}, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// dialURL connects to one server within the dial timeout, TLS (LDAPS or
// StartTLS) included: go-ldap's own dialer does not bound the StartTLS
// handshake, so the connection is made here and handed to ldap.NewConn.
func (p *pool) dialURL(ctx context.Context, raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ldap": ldap.DefaultLdapPort, "ldaps": ldap.DefaultLdapsPort}[u.Scheme]
	}
	dctx, cancel := context.WithTimeout(ctx, p.dialWait)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	cfg := p.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if u.Scheme == "ldaps" {
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%s: TLS: %w", raw, err)
		}
		c := ldap.NewConn(tc, true)
		c.Start()
		c.SetTimeout(p.opTimeout)
		return c, nil
	}
	c := ldap.NewConn(nc, false)
	c.Start()
	c.SetTimeout(p.opTimeout)
	if p.startTLS {
		deadline, _ := dctx.Deadline()
		_ = nc.SetDeadline(deadline)
		if err := c.StartTLS(cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: StartTLS: %w", raw, err)
		}
		_ = nc.SetDeadline(time.Time{})
	}
	return c, nil
}

// asService binds c as the service account unless it is bound so already.
func (c *conn) asService() error {
	if c.bound == c.pool.bindDN {
		return nil
	}
	c.bound = ""
	if err := c.Bind(c.pool.bindDN, c.pool.password); err != nil {
		return &serviceBindError{err: err}
	}
	c.bound = c.pool.bindDN
	c.done++
	return nil
}

// bindAs binds c as dn with password (a simple bind, RFC 4513 §5.1.3). The
// caller has refused an empty password already; go-ldap refuses it too.
func (c *conn) bindAs(dn, password string) error {
	c.bound = ""
	if err := c.Bind(dn, password); err != nil {
		return err
	}
	c.bound = dn
	c.done++
	return nil
}

// search runs req as the service account.
func (c *conn) search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	if err := c.asService(); err != nil {
		return nil, err
	}
	res, err := c.Search(req)
	if err == nil || ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		c.done++
	}
	return res, err
}

// broken reports whether err means the connection cannot be used any
// more: anything but an LDAP result from the server.
func (c *conn) broken(err error) bool {
	if err == nil {
		return c.IsClosing()
	}
	var le *ldap.Error
	return !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork || c.IsClosing()
}

// serviceBindError: the directory refused the service account's bind.
type serviceBindError struct{ err error }

func (e *serviceBindError) Error() string {
	return "the service account's bind failed: " + describeLDAPError(e.err)
}

func (e *serviceBindError) Unwrap() error { return e.err }
