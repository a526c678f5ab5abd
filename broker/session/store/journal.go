package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// The journal: revocations survive a failover.
//
// Redis replicates asynchronously, so a write the primary acknowledged can
// die with it. With session.redis.wait.replicas, every write that must
// survive waits (WAIT) until that many replicas have it; when they do not
// confirm in time, or the write fails on a connection that died, a
// session's deletion or an index entry (a revocation mark, or the entry
// that lets a back-channel logout find the session) is kept here and
// written again, on whatever server is then the primary, until replicas
// confirm it. Meanwhile this replica treats the session as deleted and
// the entry as present. A lost deletion would be a session that comes
// back; a lost session write is a user who signs in again, so those are
// only logged.
//
// The journal lives in this process: it does not survive the broker
// replica's own death during the same failover.

// journalMax bounds the journal (about 100 bytes an entry); past it the
// oldest entries are dropped, and that is logged.
const journalMax = 100_000

// journalRetry is how often unconfirmed writes are written again; a
// failover writes them at once.
const journalRetry = time.Second

// journalBatch bounds one rewrite.
const journalBatch = 1000

type journal struct {
	mu   sync.Mutex
	dels map[string]uint64     // token → seq
	adds map[journalKey]jEntry // (key, token) → until
	seq  uint64
	n    atomic.Int64
	// order lists the entries by insertion from head on, so that trimming
	// drops the oldest without a scan; an item whose entry was since
	// written again or confirmed is stale and skipped (compactLocked
	// bounds how many accumulate).
	order   []jOrder
	head    int
	visited int // order items trimming looked at (tests)

	start sync.Once
	kick  chan struct{}
}

type journalKey struct{ key, token string }

// jOrder is one insertion: a deletion of token (del) or an index entry.
type jOrder struct {
	seq   uint64
	del   bool
	token string
	key   journalKey
}

type jEntry struct {
	until time.Time
	seq   uint64
}

func newJournal() *journal {
	return &journal{dels: map[string]uint64{}, adds: map[journalKey]jEntry{}, kick: make(chan struct{}, 1)}
}

// addDel keeps the deletion of token's session.
func (j *journal) addDel(token string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	j.dels[token] = j.seq
	j.order = append(j.order, jOrder{seq: j.seq, del: true, token: token})
	j.trimLocked()
}

// addIndex keeps the index entries of token under keys.
func (j *journal) addIndex(keys []string, token string, until time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	for _, k := range keys {
		j.adds[journalKey{k, token}] = jEntry{until: until, seq: j.seq}
		j.order = append(j.order, jOrder{seq: j.seq, key: journalKey{k, token}})
	}
	j.trimLocked()
}

// JournalEntries is how many deletions and index entries wait for replicas
// to confirm them (a metric).
func (s *Redis) JournalEntries() int { return int(s.journal.n.Load()) }

// trimLocked keeps the journal within journalMax, dropping the oldest
// (in amortized constant time: order), and bounds order.
func (j *journal) trimLocked() {
	for len(j.dels)+len(j.adds) > journalMax && j.head < len(j.order) {
		o := j.order[j.head]
		j.order[j.head] = jOrder{}
		j.head++
		j.visited++
		switch {
		case o.del && j.dels[o.token] == o.seq:
			delete(j.dels, o.token)
		case !o.del && j.adds[o.key].seq == o.seq:
			delete(j.adds, o.key)
		}
	}
	j.compactLocked()
	j.n.Store(int64(len(j.dels) + len(j.adds)))
}

// compactLocked drops order's stale items, and the trimmed ones before
// head, once they outnumber the live entries (plus a slack): each pass is
// paid for by the insertions since the last one.
func (j *journal) compactLocked() {
	live := len(j.dels) + len(j.adds)
	if len(j.order) <= 2*live+1024 {
		return
	}
	kept := make([]jOrder, 0, live)
	for _, o := range j.order[j.head:] {
		if (o.del && j.dels[o.token] == o.seq) || (!o.del && j.adds[o.key].seq == o.seq) {
			kept = append(kept, o)
		}
	}
	j.order, j.head = kept, 0
}

// deleted reports whether the deletion of token's session is kept.
func (j *journal) deleted(token string) bool {
	if j.n.Load() == 0 {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.dels[token]
	return ok
}

// indexed adds to tokens those kept under key and not yet ended.
func (j *journal) indexed(key string, tokens []string, now time.Time) []string {
	if j.n.Load() == 0 {
		return tokens
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for k, e := range j.adds {
		if k.key == key && now.Before(e.until) && !contains(tokens, k.token) {
			tokens = append(tokens, k.token)
		}
	}
	return tokens
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// snapshot is a batch to write again: deletions, and the index entries
// not yet ended (the ended ones are dropped).
func (j *journal) snapshot(now time.Time) (dels map[string]uint64, adds map[journalKey]jEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	dels, adds = map[string]uint64{}, map[journalKey]jEntry{}
	for t, s := range j.dels {
		if len(dels) == journalBatch {
			break
		}
		dels[t] = s
	}
	for k, e := range j.adds {
		if !now.Before(e.until) {
			delete(j.adds, k)
			continue
		}
		if len(dels)+len(adds) < journalBatch {
			adds[k] = e
		}
	}
	j.n.Store(int64(len(j.dels) + len(j.adds)))
	return dels, adds
}

// confirm forgets the entries of a batch that replicas confirmed, unless
// they were kept again since.
func (j *journal) confirm(dels map[string]uint64, adds map[journalKey]jEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for t, s := range dels {
		if j.dels[t] == s {
			delete(j.dels, t)
		}
	}
	for k, e := range adds {
		if j.adds[k].seq == e.seq {
			delete(j.adds, k)
		}
	}
	j.n.Store(int64(len(j.dels) + len(j.adds)))
}

// sendWait sends WAIT when this write waits for replicas, and returns the
// number of replies it adds (0 or 1).
func (s *Redis) sendWait(c redis.Conn) int {
	if !s.waiting() {
		return 0
	}
	_ = c.Send("WAIT", s.waitN, s.waitTimeout.Milliseconds())
	return 1
}

// degradedFor: after replicas failed to confirm a write, the writes of
// the next degradedFor do not wait for them (each would wait the whole
// wait.timeout while, say, a failover left the primary without a
// replica); deletions and index entries go to the journal meanwhile, whose
// next confirmed rewrite ends the period.
const degradedFor = 5 * time.Second

// waiting reports whether writes wait for replicas now: wait.replicas is
// set, and they did not fail to confirm lately.
func (s *Redis) waiting() bool {
	return s.waitN > 0 && time.Now().UnixNano() >= s.shortUntil.Load()
}

// confirmed reads WAIT's reply: whether enough replicas have the
// connection's writes. A shortfall is logged, at most once a minute, and
// starts a degraded period.
func (s *Redis) confirmed(reply any, err error) bool {
	n, err := redis.Int(reply, err)
	if err == nil && n >= s.waitN {
		return true
	}
	s.shortUntil.Store(time.Now().Add(degradedFor).UnixNano())
	if ok, skipped := s.waitErrs.Allow(time.Now()); ok {
		s.log.Warn("session store: a write was not confirmed by session.redis.wait.replicas within wait.timeout; a failover now could lose it",
			"replicas", n, "want", s.waitN, "error", err, "similar_errors_not_logged", skipped)
	}
	return false
}

// wait waits on c for the replicas to have its writes (after a command
// that cannot be pipelined with WAIT); true when they do or writes do not
// wait, false when they did not or (degraded) were not asked.
func (s *Redis) wait(ctx context.Context, c redis.Conn) bool {
	switch {
	case s.waitN == 0:
		return true
	case !s.waiting():
		return false
	}
	return s.confirmed(redis.DoContext(c, ctx, "WAIT", s.waitN, s.waitTimeout.Milliseconds()))
}

// Pending is the number of writes kept in the journal.
func (s *Redis) Pending() int { return int(s.journal.n.Load()) }

// keep journals an unconfirmed write and makes sure the rewriting runs.
func (s *Redis) keep(add func(j *journal)) {
	add(s.journal)
	s.journal.start.Do(func() { go s.rewrite() })
}

// replayNow writes the journal again at once (after a failover).
func (s *Redis) replayNow() {
	select {
	case s.journal.kick <- struct{}{}:
	default:
	}
}

// rewrite writes the journal again every journalRetry, and at once after
// a failover, until Close.
func (s *Redis) rewrite() {
	defer close(s.rewriteDone)
	t := time.NewTicker(journalRetry)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.journal.kick:
		}
		if s.journal.n.Load() == 0 {
			continue
		}
		if err := s.replay(s.ctx); err != nil && s.ctx.Err() == nil {
			if ok, skipped := s.waitErrs.Allow(time.Now()); ok {
				s.log.Warn("session store: revocations not yet confirmed by replicas; writing them again",
					"pending", s.Pending(), "error", err, "similar_errors_not_logged", skipped)
			}
		}
	}
}

// errShort: fewer replicas than session.redis.wait.replicas confirmed.
var errShort = errors.New("fewer replicas than session.redis.wait.replicas confirmed the write in time")

// replay writes one batch of the journal again, then waits for the
// replicas; confirmed entries leave the journal.
func (s *Redis) replay(ctx context.Context) error {
	dels, adds := s.journal.snapshot(s.now())
	if len(dels)+len(adds) == 0 {
		return nil
	}
	err := s.do(ctx, func(ctx context.Context, c redis.Conn) error {
		for t := range dels {
			_ = c.Send("DEL", s.sessionKey(t))
			_ = c.Send("PUBLISH", s.channel, HashOf(t).String())
		}
		if len(dels) > 0 {
			if _, err := redis.DoContext(c, ctx, ""); err != nil {
				return err
			}
		}
		now := s.now().UnixMilli()
		for k, e := range adds {
			if _, err := indexAddScript.DoContext(ctx, c, 1, s.indexKey(k.key), k.token, e.until.UnixMilli(), now); err != nil {
				return err
			}
		}
		n, err := redis.Int(redis.DoContext(c, ctx, "WAIT", s.waitN, s.waitTimeout.Milliseconds()))
		if err != nil {
			return err
		}
		if n < s.waitN {
			s.shortUntil.Store(time.Now().Add(degradedFor).UnixNano())
			return fmt.Errorf("%w (%d of %d)", errShort, n, s.waitN)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.journal.confirm(dels, adds)
	s.shortUntil.Store(0) // replicas confirm again
	return nil
}
