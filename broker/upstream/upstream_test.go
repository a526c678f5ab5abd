package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUpstreamChoice checks the order in which upstreams are tried: exact
// host, then domain suffix (longest first), then any host; within each,
// the longest path prefix, on whole segments.
func TestUpstreamChoice(t *testing.T) {
	cfgs := []Config{
		{Path: "/", URL: "http://root"},
		{Path: "/api/", URL: "http://api"},
		{Path: "/api/v2", URL: "http://api-v2"},
		{Host: ".example.com", Path: "/", URL: "http://domain"},
		{Host: "App.Example.com", Path: "/", URL: "http://app"},
		{Host: "app.example.com", Path: "/api", URL: "http://app-api"},
		{Host: ".eu.example.com", Path: "/", URL: "http://eu"},
	}
	s := New(cfgs, Relay{})
	cases := []struct{ host, path, want string }{
		{"other.test", "/", "http://root"},
		{"other.test", "/x/y", "http://root"},
		{"other.test", "/api", "http://api"},
		{"other.test", "/api/", "http://api"},
		{"other.test", "/api/items", "http://api"},
		{"other.test", "/apix", "http://root"},
		{"other.test", "/api/v2/x", "http://api-v2"},
		{"other.test", "/api/v20", "http://api"},
		{"app.example.com", "/api/v2/x", "http://app-api"}, // the host first, then the path
		{"app.example.com", "/x", "http://app"},
		{"APP.example.com:8443", "/x", "http://app"},
		{"x.example.com", "/api/x", "http://domain"},
		{"example.com", "/", "http://domain"},
		{"a.eu.example.com", "/", "http://eu"},
		{"notexample.com", "/", "http://root"},
		// A trailing dot names the same host: the access rules decide
		// "app.example.com." as app.example.com, so it goes to that host's
		// upstream, not to the one for any host.
		{"app.example.com.", "/x", "http://app"},
		{"app.example.com.:8443", "/api/v2", "http://app-api"},
		{"a.eu.example.com.", "/", "http://eu"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "http://"+c.host+c.path, nil)
		up := s.Match(r)
		if up == nil || up.audience != c.want {
			got := "nothing"
			if up != nil {
				got = up.audience
			}
			t.Errorf("%s%s went to %s, want %s", c.host, c.path, got, c.want)
		}
	}

	s = New([]Config{{Path: "/api", URL: "http://api"}}, Relay{})
	if up := s.Match(httptest.NewRequest(http.MethodGet, "/other", nil)); up != nil {
		t.Errorf("/other went to %s, want no upstream", up.audience)
	}
}
