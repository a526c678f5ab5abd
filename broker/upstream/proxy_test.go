package upstream

import (
	"net/http"
	"testing"
)

// TestRefuseOtherSwitch checks the reverse proxy's ModifyResponse on its
// own: net/http/httputil passes a 101 whose Upgrade matches the request's,
// so were an h2c request ever to reach an upstream, its h2c answer must
// still be refused; a WebSocket's passes.
func TestRefuseOtherSwitch(t *testing.T) {
	ws := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
	h2c := http.Header{"Upgrade": {"h2c"}, "Connection": {"Upgrade"}}
	for _, c := range []struct {
		req, res http.Header
		ok       bool
	}{
		{ws, ws, true},
		{ws, http.Header{"Upgrade": {"WebSocket"}, "Connection": {"upgrade"}}, true},
		{h2c, h2c, false},
		{ws, h2c, false},
		{http.Header{}, ws, false},
		{ws, http.Header{"Upgrade": {"websocket"}}, false},
	} {
		err := refuseOtherSwitch(&http.Response{StatusCode: http.StatusSwitchingProtocols, Header: c.res,
			Request: &http.Request{Header: c.req}})
		if (err == nil) != c.ok {
			t.Errorf("101 %v to %v: error %v, want passed %v", c.res, c.req, err, c.ok)
		}
	}
	if err := refuseOtherSwitch(&http.Response{StatusCode: http.StatusOK, Header: h2c, Request: &http.Request{Header: h2c}}); err != nil {
		t.Errorf("a 200 refused: %v", err)
	}
}
