package store

import (
	"strconv"
	"testing"
	"time"
)

// TestJournalTrimAtCapDropsOldestWithoutScanning: at journalMax, each
// insertion drops the oldest entry by looking at a few queued items, not
// at the whole journal; entries written again are kept by their last
// write, and the queue stays bounded.
func TestJournalTrimAtCapDropsOldestWithoutScanning(t *testing.T) {
	j := newJournal()
	until := time.Now().Add(time.Hour)
	j.addDel("first") // written again below: not the oldest any more
	for i := range journalMax - 1 {
		if i%2 == 0 {
			j.addDel("d" + strconv.Itoa(i))
		} else {
			j.addIndex([]string{"revoked:a" + strconv.Itoa(i)}, "a"+strconv.Itoa(i), until)
		}
	}
	j.addDel("first")
	const more = 5000
	before := j.visited
	for i := range more {
		j.addDel("late" + strconv.Itoa(i))
	}
	if got := len(j.dels) + len(j.adds); got != journalMax {
		t.Fatalf("journal holds %d entries, want journalMax %d", got, journalMax)
	}
	if v := j.visited - before; v > 2*more+2 {
		t.Errorf("%d insertions at the cap looked at %d queued items; want at most %d", more, v, 2*more+2)
	}
	if !j.deleted("first") {
		t.Error("an entry written again was dropped as if it were as old as its first write")
	}
	if j.deleted("d0") || !j.deleted("late"+strconv.Itoa(more-1)) {
		t.Error("trimming did not drop the oldest entry and keep the newest")
	}
	if len(j.order) > 2*journalMax+1024 {
		t.Errorf("the insertion queue holds %d items for %d entries", len(j.order), journalMax)
	}
}

// TestJournalQueueStaysBoundedWhenConfirmed: entries confirmed as fast as
// they come leave no growing queue behind.
func TestJournalQueueStaysBoundedWhenConfirmed(t *testing.T) {
	j := newJournal()
	for i := range 10_000 {
		j.addDel("t" + strconv.Itoa(i))
		dels, adds := j.snapshot(time.Now())
		j.confirm(dels, adds)
	}
	if len(j.order) > 1024+1 {
		t.Errorf("the insertion queue holds %d items for an empty journal", len(j.order))
	}
}

// BenchmarkJournalAddAtCap: the cost of one insertion into a full journal.
func BenchmarkJournalAddAtCap(b *testing.B) {
	j := newJournal()
	for i := range journalMax {
		j.addDel("t" + strconv.Itoa(i))
	}
	b.ResetTimer()
	for i := range b.N {
		j.addDel("n" + strconv.Itoa(i))
	}
}
