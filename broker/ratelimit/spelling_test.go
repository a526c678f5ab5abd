package ratelimit

import "testing"

// TestLimitKeyIgnoresSpelling: directories match usernames ignoring case
// and spaces, so the limits count the account, not one spelling of it.
func TestLimitKeyIgnoresSpelling(t *testing.T) {
	want := UserKey("corp", "alice")
	for _, spelling := range []string{"ALICE", " alice", "alice  ", "Alice"} {
		if got := UserKey("corp", spelling); got != want {
			t.Errorf("UserKey(%q) = %q, want %q", spelling, got, want)
		}
	}
	if UserKey("corp", "al ice") == want || UserKey("other", "alice") == want {
		t.Error("different accounts share a key")
	}
}
