package providers

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDefaultClientReusesConnections: logins at once reuse connections to
// their IdP. 8 clients make 20 calls each; net/http's default idle pool of
// 2 per host would close most connections after each call and open new
// ones (about 6 of every 8 calls), the default client keeps them.
func TestDefaultClientReusesConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"at"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	hc := Options{}.withDefaults().HTTPClient
	const clients, calls = 8, 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			<-start
			for range calls {
				resp, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = resp.Body.Read(make([]byte, 64))
				resp.Body.Close()
			}
		})
	}
	close(start)
	wg.Wait()
	if n := opened.Load(); n > 2*clients {
		t.Errorf("%d connections opened for %d calls by %d clients at once; want at most %d", n, clients*calls, clients, 2*clients)
	}
}
