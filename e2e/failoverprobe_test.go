//go:build e2e

package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// failoverProber asks every user's forward-auth check on every replica
// every 50 ms, and fails the test at once when a check answers another
// user's identity, a session after its revocation was acknowledged, or
// anything but 202 or 503 for a session that must survive (erin's, gina's).
type failoverProber struct {
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu      sync.Mutex
	results []probeResult
}

type probeResult struct {
	start, end    time.Time
	user, replica string
	status        int
}

// survivors must stay signed in through the failover.
var survivors = map[string]bool{"erin": true, "gina": true}

func newFailoverProber(t *testing.T, reps []*replica, users map[string]*haUser) *failoverProber {
	p := &failoverProber{done: make(chan struct{})}
	for _, u := range users {
		for _, r := range reps {
			p.wg.Go(func() { p.probe(t, u, r) })
		}
	}
	return p
}

func (p *failoverProber) probe(t *testing.T, u *haUser, r *replica) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		res := probeResult{start: time.Now(), user: u.name, replica: r.name}
		var got string
		if resp, err := u.client.Get(r.url + "/oauth2/auth"); err == nil {
			resp.Body.Close()
			res.status, got = resp.StatusCode, resp.Header.Get("X-Auth-Request-User")
		}
		res.end = time.Now()
		switch {
		case res.status == http.StatusAccepted && got != u.want:
			t.Errorf("%s's check on %s answered the identity %q", u.name, r.name, got)
		case res.status == http.StatusAccepted && u.revoked.Load() != nil && res.start.After(*u.revoked.Load()):
			t.Errorf("%s's check on %s accepted the session %v after its revocation was acknowledged",
				u.name, r.name, res.start.Sub(*u.revoked.Load()))
		case survivors[u.name] && res.status != http.StatusAccepted && res.status != http.StatusServiceUnavailable:
			t.Errorf("%s's check on %s answered %d: the session must survive the failover", u.name, r.name, res.status)
		}
		p.mu.Lock()
		p.results = append(p.results, res)
		p.mu.Unlock()
	}
}

func (p *failoverProber) stop() {
	p.stopOnce.Do(func() { close(p.done) })
	p.wg.Wait()
}

// waitRecovered waits until the survivors' checks that started after
// since answered 202 ten times in a row on every replica since their last
// failure (503), and returns when that last failure was answered (zero:
// none).
func (p *failoverProber) waitRecovered(t *testing.T, since time.Time, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if at, ok := p.recovered(since); ok {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("the survivors' checks did not recover within %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *failoverProber) recovered(since time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	streak := map[string]int{}
	var last time.Time
	for _, r := range p.results {
		if !survivors[r.user] || r.start.Before(since) {
			continue
		}
		k := r.user + "@" + r.replica
		if r.status == http.StatusAccepted {
			streak[k]++
			continue
		}
		streak[k] = 0
		last = r.end
	}
	if len(streak) < 2*len(survivors) {
		return last, false
	}
	for _, n := range streak {
		if n < 10 {
			return last, false
		}
	}
	return last, true
}

func (p *failoverProber) last503() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Time
	for _, r := range p.results {
		if r.status == http.StatusServiceUnavailable && r.end.After(last) {
			last = r.end
		}
	}
	return last
}

// slowest is the longest a check took, and when it started.
func (p *failoverProber) slowest() (time.Duration, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	var at time.Time
	for _, r := range p.results {
		if r.end.Sub(r.start) > d {
			d, at = r.end.Sub(r.start), r.start
		}
	}
	return d, at
}

func (p *failoverProber) count(status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.results {
		if r.status == status {
			n++
		}
	}
	return n
}

func (p *failoverProber) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.results)
}

// report logs, per replica, when its checks answered 503 after the
// failure (first and last, relative to it).
func (p *failoverProber) report(t *testing.T, failedAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rep := range []string{"a", "b"} {
		var first, last time.Time
		n, all := 0, 0
		for _, r := range p.results {
			if r.replica != rep {
				continue
			}
			all++
			if r.status != http.StatusServiceUnavailable {
				continue
			}
			n++
			if first.IsZero() {
				first = r.start
			}
			last = r.end
		}
		if n == 0 {
			t.Logf("replica %s: no 503 in %d checks", rep, all)
			continue
		}
		t.Logf("replica %s: %d of %d checks answered 503, from +%v to +%v after the failure", rep, n, all,
			first.Sub(failedAt).Round(time.Millisecond), last.Sub(failedAt).Round(time.Millisecond))
	}
}
