package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/redisserver"
)

// lossyProxy forwards to addr; when armed, the reply to the first
// pipeline holding EXEC is not forwarded: hook runs, then the client's
// connection is closed (a reply lost to a dying connection).
type lossyProxy struct {
	ln    net.Listener
	addr  string
	armed atomic.Bool
	hook  func()
	// trigger is what the pipeline whose reply is lost holds; "PXAT" (a
	// session write) when "".
	trigger string
}

func newLossyProxy(t *testing.T, addr string) *lossyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, addr: addr}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *lossyProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.addr)
	if err != nil {
		c.Close()
		return
	}
	var sawTrigger atomic.Bool
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); s.Close() }) }
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if p.armed.Load() && bytes.Contains(buf[:n], []byte(cmpOr(p.trigger, "PXAT"))) {
					sawTrigger.Store(true)
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					closeBoth()
					return
				}
			}
			if err != nil {
				closeBoth()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && sawTrigger.Load() && p.armed.CompareAndSwap(true, false) {
			time.Sleep(50 * time.Millisecond) // the rest of the pipeline's replies
			p.hook()
			closeBoth()
			return
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				closeBoth()
				return
			}
		}
		if err != nil {
			closeBoth()
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// TestRedisCommitWhoseReplyWasLostIsNotSentAgain: a session write whose reply is
// lost is sent again; a deletion (sign-out, back-channel logout on another
// replica) that landed between the two brings the session back.
func TestRedisCommitWhoseReplyWasLostIsNotSentAgain(t *testing.T) {
	r := redisserver.Start(t)
	p := newLossyProxy(t, r.Addr)
	s, err := NewRedis(RedisConfig{Address: p.ln.Addr().String(), KeyPrefix: "t:"}, 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	if err := s.CommitCtx(ctx, "tok", []byte("v1"), exp); err != nil {
		t.Fatal(err)
	}
	// Another replica ends the session while this one's write is in flight.
	p.hook = func() { r.Do("DEL", "t:session:tok") }
	p.armed.Store(true)
	err = s.CommitCtx(ctx, "tok", []byte("v2"), exp)
	t.Logf("commit: %v", err)
	if n, _ := r.Do("EXISTS", "t:session:tok").(int64); n != 0 {
		t.Errorf("the session deleted between the write and its retry is back in Redis")
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestRedisOnceRetriedAfterLostReplyIsFresh: the first use of a
// single-use mark whose reply is lost is retried and reported as not
// fresh: a back-channel logout token seen for the first time is refused
// as a replay (400) and its sessions are not ended.
func TestRedisOnceRetriedAfterLostReplyIsFresh(t *testing.T) {
	r := redisserver.Start(t)
	p := newLossyProxy(t, r.Addr)
	s, err := NewRedis(RedisConfig{Address: p.ln.Addr().String(), KeyPrefix: "t:"}, 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// The script is loaded first: the reply lost is the one of the write.
	if _, err := s.Once(context.Background(), "warm", time.Minute); err != nil {
		t.Fatal(err)
	}
	p.hook, p.trigger = func() {}, "logout-jti"
	p.armed.Store(true)
	fresh, err := s.Once(context.Background(), "logout-jti:alpha:j-1", time.Minute)
	if err != nil || !fresh {
		t.Errorf("the first use of a jti whose reply was lost: fresh %v, error %v; want fresh", fresh, err)
	}
	if fresh, err := s.Once(context.Background(), "logout-jti:alpha:j-1", time.Minute); err != nil || fresh {
		t.Errorf("the second use of the jti: fresh %v, error %v; want a replay", fresh, err)
	}
}

// TestRedisOnceThatFailsLeavesNoMark: when Once fails after its write
// reached Redis (both tries' replies lost), the mark is taken back: the
// IdP's retry of a back-channel logout after the 503 is not a replay.
func TestRedisOnceThatFailsLeavesNoMark(t *testing.T) {
	r := redisserver.Start(t)
	p := newLossyProxy(t, r.Addr)
	s, err := NewRedis(RedisConfig{Address: p.ln.Addr().String(), KeyPrefix: "t:"}, 0, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if _, err := s.Once(ctx, "warm", time.Minute); err != nil {
		t.Fatal(err)
	}
	lost := 0
	p.hook, p.trigger = func() {
		if lost++; lost < 2 { // the retry's reply is lost too
			p.armed.Store(true)
		}
	}, "logout-jti"
	p.armed.Store(true)
	if _, err := s.Once(ctx, "logout-jti:alpha:j-2", time.Minute); err == nil {
		t.Fatal("Once succeeded although both replies were lost")
	}
	if n, _ := r.Do("EXISTS", "t:once:logout-jti:alpha:j-2").(int64); n != 0 {
		t.Errorf("the mark of a failed Once is left in Redis")
	}
	if fresh, err := s.Once(ctx, "logout-jti:alpha:j-2", time.Minute); err != nil || !fresh {
		t.Errorf("the retry after a failed Once: fresh %v, error %v; want fresh", fresh, err)
	}
}

// TestRedisCommitAfterRestartSucceeds: a commit is not sent twice, yet a
// restart of Redis costs no commit: the pool's idle connections that the
// server closed are found so before anything is written on them.
func TestRedisCommitAfterRestartSucceeds(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisStore(t, r, time.Now)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range DefaultRedisPoolMaxIdle { // idle connections, all of them
		wg.Go(func() {
			_ = s.do(ctx, func(ctx context.Context, c redis.Conn) error {
				<-hold
				_, err := redis.DoContext(c, ctx, "PING")
				return err
			})
		})
	}
	waitFor(t, 10*time.Second, "every connection taken", func() bool { return s.pool.Stats().ActiveCount == DefaultRedisPoolMaxIdle })
	close(hold)
	wg.Wait()
	r.Stop()
	r.Restart()
	var failed atomic.Int32
	for i := range 2 * DefaultRedisPoolMaxIdle {
		wg.Go(func() {
			if err := s.CommitCtx(ctx, "tok"+strconv.Itoa(i), []byte("v"), exp); err != nil {
				if failed.Add(1) == 1 {
					t.Errorf("commit after the restart: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d commits failed after the restart", n, 2*DefaultRedisPoolMaxIdle)
	}
}

// TestRedisCommandEndsWithItsContext: a command waiting on a hung server
// ends when its context does (conn.DoContext, without redigo's goroutine),
// with the context's error, which is no failover: the pool keeps its
// other connections.
func TestRedisCommandEndsWithItsContext(t *testing.T) {
	r := redisserver.Start(t)
	s := testRedisStore(t, r, time.Now)
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range 2 { // two pooled connections, one for each case
		wg.Go(func() {
			_ = s.do(context.Background(), func(ctx context.Context, c redis.Conn) error {
				<-hold
				_, err := redis.DoContext(c, ctx, "PING")
				return err
			})
		})
	}
	waitFor(t, 10*time.Second, "both connections taken", func() bool { return s.pool.Stats().ActiveCount == 2 })
	close(hold)
	wg.Wait()
	gen := s.primary.gen.Load()
	r.Pause()
	defer r.Resume()
	canceled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	timed, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {timed, context.DeadlineExceeded}} {
		start := time.Now()
		_, _, err := s.FindCtx(c.ctx, "x")
		if !errors.Is(err, c.want) || time.Since(start) > time.Second {
			t.Errorf("read on a hung server: %v after %v, want %v after 100ms", err, time.Since(start), c.want)
		}
	}
	if s.primary.gen.Load() != gen {
		t.Error("a command cut short by its context counted as a failover")
	}
}
