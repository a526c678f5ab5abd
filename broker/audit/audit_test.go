package audit

import "testing"

// TestReasonLabels: a reason's metric label is the class its giver chose,
// whatever its text says; a reason without a class (an access rule's) is
// "other", and no reason has no label. Only the operator's trouble warns.
func TestReasonLabels(t *testing.T) {
	for _, c := range []struct {
		r    Reason
		want string
	}{
		{Because(CSRF, "csrf token mismatch"), "csrf"},
		{Because(UnknownState, "unknown or replayed state: started in another browser"), "unknown_state"},
		// The text no longer decides: one that begins like another
		// class's keeps its own.
		{Because(IdPError, "idp error access_denied_extra"), "idp_error"},
		{Because(RateLimited, "refresh refused"), "rate_limited"},
		{Plain(`route "/admin/": needs group one_of [admins]`), "other"},
		{Reason{}, ""},
	} {
		if got := c.r.Label(); got != c.want {
			t.Errorf("%+v: label %q, want %q", c.r, got, c.want)
		}
	}
	for w, warns := range map[Why]bool{ClientRejected: true, IdPUnavailable: true, StoreUnavailable: true,
		CSRF: false, BadCredentials: false, Other: false} {
		if w.Warns() != warns {
			t.Errorf("%s warns: %v, want %v", w, w.Warns(), warns)
		}
	}
}
