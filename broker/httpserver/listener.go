package httpserver

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener whose Close also closes the connections it
// accepted on which the client has not sent a byte yet.
//
// http.Server.Shutdown closes idle keep-alive connections at once, but it
// waits for a new connection that has not sent its first request until the
// connection is five seconds old: a proxy or a browser that opens
// connections ahead of need (preconnect), or a client that gave up while
// dialing, would hold every shutdown back by five seconds. Serve hs on a
// Listener and hs.Shutdown (which closes its listeners first) drops those
// connections instead. No request is lost that net/http would have served:
// the client sent none (net/http drops a request whose header is still
// arriving when Shutdown begins), and requests in flight finish.
type Listener struct {
	net.Listener

	mu     sync.Mutex
	conns  map[*conn]struct{} // open, not a byte read yet
	closed bool
	once   sync.Once
	err    error
}

// NewListener wraps ln (see Listener).
func NewListener(ln net.Listener) *Listener {
	return &Listener{Listener: ln, conns: make(map[*conn]struct{})}
}

// Accept waits for the next connection and tracks it until its first byte.
// A connection whose accept completes after Close (the two raced: the
// kernel had it, Close ran before Accept returned it) is closed as Close
// closes the silent ones, and Accept reports the listener closed: served,
// it would hold Shutdown back by five seconds.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, l: l}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.conns[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

// Close closes the listener, then every accepted connection that has not
// sent a byte. A second Close does nothing and returns the first's error.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.err = l.Listener.Close()
		l.mu.Lock()
		l.closed = true
		silent := make([]*conn, 0, len(l.conns))
		for c := range l.conns {
			silent = append(silent, c)
		}
		clear(l.conns)
		l.mu.Unlock()
		for _, c := range silent {
			if !c.spoke.Load() {
				_ = c.Conn.Close()
			}
		}
	})
	return l.err
}

// forget stops tracking c: it spoke, or it closed.
func (l *Listener) forget(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// silent reports how many tracked connections have not sent a byte (tests).
func (l *Listener) silent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// conn is an accepted connection that tells its Listener when the client
// first speaks. After that it costs one atomic load per Read.
type conn struct {
	net.Conn
	l     *Listener
	spoke atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.spoke.Load() {
		c.spoke.Store(true)
		c.l.forget(c)
	}
	return n, err
}

func (c *conn) Close() error {
	if !c.spoke.Load() {
		c.l.forget(c)
	}
	return c.Conn.Close()
}

// ReadFrom and WriteTo keep the kernel's zero-copy paths (sendfile,
// splice) of a TCP connection, which the reverse proxy's WebSocket tunnels
// use once they own the connection.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *conn) WriteTo(w io.Writer) (int64, error) {
	c.spoke.Store(true) // bytes may flow without Read: stop tracking
	c.l.forget(c)
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}
