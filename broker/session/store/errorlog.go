package store

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// ErrorLog logs a recurring error at most once per interval, with the
// number of occurrences in between, so that an outage of the store under
// load does not flood the log. With AllowKind, an error of a kind not seen
// in the interval is logged all the same: the dead connections found after
// Redis came back are not hidden behind the refused dials of its outage.
type ErrorLog struct {
	Interval time.Duration
	mu       sync.Mutex
	last     time.Time
	skipped  int
	kinds    map[string]time.Time // kind → when last logged
}

// maxErrorKinds bounds the kinds an ErrorLog tells apart.
const maxErrorKinds = 16

// Allow reports whether to log now, and how many were skipped before.
func (l *ErrorLog) Allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Interval {
		l.skipped++
		return false, 0
	}
	n := l.skipped
	l.last, l.skipped = now, 0
	return true, n
}

// AllowKind is Allow for an error of kind (ErrorKind): the first of each
// kind in an interval is logged.
func (l *ErrorLog) AllowKind(now time.Time, kind string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.kinds[kind]; (ok && now.Sub(t) < l.Interval) || (!ok && len(l.kinds) >= maxErrorKinds && now.Sub(l.last) < l.Interval) {
		l.skipped++
		return false, 0
	}
	if l.kinds == nil || len(l.kinds) >= maxErrorKinds {
		l.kinds = map[string]time.Time{}
	}
	l.kinds[kind] = now
	n := l.skipped
	l.last, l.skipped = now, 0
	return true, n
}

// ErrorKind names the kind of a store failure, for AllowKind: Redis's
// error code (READONLY, NOPERM, …), the network operation that failed
// (dial, read, write), or the error's type.
func ErrorKind(err error) string {
	var re redis.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &re):
		code, _, _ := strings.Cut(string(re), " ")
		return "redis " + code
	case errors.As(err, &oe):
		return "net " + oe.Op
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return fmt.Sprintf("%T", err)
		}
		err = u
	}
}
