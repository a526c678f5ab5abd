package presets

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestAPIRequestFollowsNoRedirect: the user's access token goes to the
// API it was issued for only. net/http would resend Authorization on a
// redirect to the same host name on another port; the call follows none.
func TestAPIRequestFollowsNoRedirect(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization") != "")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer api.Close()
	var v map[string]any
	_, err := apiRequest{url: api.URL + "/user", token: "SECRET-TOKEN"}.call(context.Background(), api.Client(), &v)
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusFound {
		t.Errorf("a redirect answered %v, want the 302 as an error", err)
	}
	if leaked.Load() {
		t.Error("the access token followed the redirect to another port")
	}
}
