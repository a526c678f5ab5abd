package store

import (
	"sync"
	"time"
)

// ErrorLog logs a recurring error at most once per interval, with the
// number of occurrences in between, so that an outage of the store under
// load does not flood the log.
type ErrorLog struct {
	Interval time.Duration
	mu       sync.Mutex
	last     time.Time
	skipped  int
}

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
