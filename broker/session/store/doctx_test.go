package store

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// cancelOnRead is a net.Conn that cancels a context once a read has
// brought data: the request's context ends just as its reply arrives (a
// client that hangs up at that moment).
type cancelOnRead struct {
	net.Conn
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *cancelOnRead) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	cancel := c.cancel
	c.cancel = nil
	c.mu.Unlock()
	if n > 0 && cancel != nil {
		cancel()
	}
	return n, err
}

// TestDoContextCanceledConnNotPooled: when ctx ends just as conn.DoContext
// reads its reply, the connection is closed before DoContext returns (not
// only by context.AfterFunc's goroutine, maybe after the pool lent it to
// another request, whose command would then fail and count as a
// failover), so the pool drops it.
func TestDoContextCanceledConnNotPooled(t *testing.T) {
	r := redisserver.Start(t)
	var cur *cancelOnRead
	pool := &redis.Pool{MaxIdle: 1, MaxActive: 1, Wait: true, Dial: func() (redis.Conn, error) {
		nc, err := net.Dial("tcp", r.Addr)
		if err != nil {
			return nil, err
		}
		cur = &cancelOnRead{Conn: nc}
		rc := redis.NewConn(cur, time.Second, time.Second)
		return &conn{fullConn: rc.(fullConn), read: time.Second}, nil
	}}
	defer pool.Close()
	pooledThenClosed, otherFailed := 0, 0
	const n = 300
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		c := pool.Get()
		cur.mu.Lock()
		cur.cancel = cancel
		cur.mu.Unlock()
		_, err := redis.DoContext(c, ctx, "PING")
		errAtPut := c.Err()
		c.Close() // back to the pool unless Err() != nil
		cancel()
		if err != nil || errAtPut != nil {
			continue // closed in time: dropped by the pool, fine
		}
		// The first request succeeded and its connection went back to the
		// pool healthy; another request now borrows it.
		other := pool.Get()
		time.Sleep(time.Millisecond)
		if _, err := redis.DoContext(other, context.Background(), "PING"); err != nil {
			otherFailed++
			t.Logf("unrelated request failed: %v (counts as a failover: %v)", err, failoverError(err))
		}
		if other.Err() != nil {
			pooledThenClosed++
		}
		other.Close()
	}
	if pooledThenClosed > 0 || otherFailed > 0 {
		t.Errorf("%d of %d: a connection pooled as healthy was closed afterwards by the first request's AfterFunc; %d unrelated commands failed", pooledThenClosed, n, otherFailed)
	}
}
