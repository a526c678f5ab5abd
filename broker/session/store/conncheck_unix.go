//go:build unix

package store

import (
	"errors"
	"syscall"
)

// errClosedByServer: an idle connection the server closed (its FIN is
// waiting to be read).
var errClosedByServer = errors.New("connection closed by the server while idle")

// closedByServer reports whether the server closed c while it sat in the
// pool: a peek (MSG_PEEK, nothing consumed, so TLS records stay intact)
// that finds the end of the stream. A connection found so is dropped
// before a command is written on it, so that even a write that must not
// run twice (CommitCtx) does not fail on a server that merely restarted.
func (c *sentConn) closedByServer() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil || errors.Is(err, syscall.ECONNRESET)
		return true // never wait
	})
	return closed
}
