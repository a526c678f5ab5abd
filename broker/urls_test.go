package broker

import "testing"

func TestOriginPort(t *testing.T) {
	cases := []struct {
		o    origin
		want string
	}{
		{origin{Scheme: "https", Host: "a.example"}, "443"},
		{origin{Scheme: "http", Host: "a.example"}, "80"},
		{origin{Scheme: "https", Host: "a.example:8443"}, "8443"},
		{origin{Scheme: "https", Host: "[::1]"}, "443"},
		{origin{Scheme: "http", Host: "[::1]:8080"}, "8080"},
	}
	for _, c := range cases {
		if got := c.o.port(); got != c.want {
			t.Errorf("%+v.port() = %q, want %q", c.o, got, c.want)
		}
	}
}
