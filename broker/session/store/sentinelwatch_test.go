//go:build linux

package store

import (
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// silentAddr is a loopback address whose connects hang: a listener with
// a backlog of 0 whose one queued connection is never accepted, so the
// kernel drops every further SYN.
func silentAddr(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 2 { // fill the accept queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestSentinelWatchDialHasConnectTimeout: the +switch-master
// subscription's dial gives up after session.redis.dial_timeout on a
// sentinel that does not answer (before, it waited for the kernel's SYN
// retries, about two minutes).
func TestSentinelWatchDialHasConnectTimeout(t *testing.T) {
	addr := silentAddr(t)
	cfg := RedisConfig{KeyPrefix: "t:", Sentinel: SentinelConfig{Addresses: []string{addr}, Master: testMaster}}
	p, err := newPrimary(cfg, nil, [3]time.Duration{100 * time.Millisecond, time.Second, time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	done := make(chan error, 1)
	go func() { _, err := p.watchOn(addr); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("subscribed to a sentinel that does not answer")
		}
		t.Logf("watch: %v", err)
	case <-time.After(20 * time.Second): // far above 100ms, far below the kernel's SYN retries
		t.Fatal("the subscription's dial to a silent sentinel did not give up")
	}
}
