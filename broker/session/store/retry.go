package store

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// Running a command, and once more when its connection died or the server
// stopped being the primary: what may run twice, and what may not.

// do runs f on a pooled connection, all within opTimeout. When the
// connection turns out dead, or the server is no longer the primary, f
// runs once more on a fresh connection (to the new primary): a restart or
// a failover costs no request once the primary answers. f must be
// idempotent: running it twice must do what running it once does, also
// when the first run's reply was lost (Once and Lock tell their own first
// write from someone else's by a value of their own: setOnce).
func (s *Redis) do(ctx context.Context, f func(ctx context.Context, c redis.Conn) error) error {
	return s.run(ctx, true, f)
}

// doUnsent is do for an f that must not run twice (CommitCtx: a session
// written again after a sign-out deleted it comes back). f runs again only
// when its first try provably did not reach the server: no connection was
// made, nothing was written on it, or the server refused the command as no
// primary. A reply lost after the command was sent (a read timeout, a
// connection closed under it) is the caller's failure.
func (s *Redis) doUnsent(ctx context.Context, f func(ctx context.Context, c redis.Conn) error) error {
	return s.run(ctx, false, f)
}

func (s *Redis) run(ctx context.Context, idempotent bool, f func(ctx context.Context, c redis.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	sent, err := s.try(ctx, !idempotent, f)
	if err != nil && s.primary.failed(err) && ctx.Err() == nil && (idempotent || !sent || refused(err)) {
		_, err = s.try(ctx, !idempotent, f)
		s.primary.failed(err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errRedis, err)
	}
	return nil
}

// try runs f on a pooled connection; sent is false when f's commands
// provably never reached the server (no connection, or none of their
// bytes written). once: f must not run twice, so the connection is one
// the server has not closed (closedByServer); f that may run twice runs
// again on a fresh connection when it finds it closed, and spares the
// check's system call.
func (s *Redis) try(ctx context.Context, once bool, f func(ctx context.Context, c redis.Conn) error) (sent bool, err error) {
	b := &borrowed{once: once}
	c, err := s.pool.GetContext(context.WithValue(ctx, borrowedKey{}, b))
	if err != nil {
		return false, err
	}
	defer c.Close()
	before := b.written()
	err = f(ctx, c)
	return before < 0 || b.written() != before, err
}
