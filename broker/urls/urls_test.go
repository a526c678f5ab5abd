package urls

import "testing"

func TestOriginPort(t *testing.T) {
	cases := []struct {
		o    Origin
		want string
	}{
		{Origin{Scheme: "https", Host: "a.example"}, "443"},
		{Origin{Scheme: "http", Host: "a.example"}, "80"},
		{Origin{Scheme: "https", Host: "a.example:8443"}, "8443"},
		{Origin{Scheme: "https", Host: "[::1]"}, "443"},
		{Origin{Scheme: "http", Host: "[::1]:8080"}, "8080"},
	}
	for _, c := range cases {
		if got := c.o.Port(); got != c.want {
			t.Errorf("%+v.Port() = %q, want %q", c.o, got, c.want)
		}
	}
}

// TestPublic: public_url's host is lowercased and its path is the prefix,
// without a trailing slash and as escaped.
func TestPublic(t *testing.T) {
	o := Public("https://Auth.Example.com:8443/a%20b/")
	if o.Scheme != "https" || o.Host != "auth.example.com:8443" || o.Prefix != "/a%20b" ||
		o.URL("/oauth2/callback/x") != "https://auth.example.com:8443/a%20b/oauth2/callback/x" || o.Path("/") != "/a%20b/" || !o.Secure() {
		t.Errorf("%+v", o)
	}
	if h := Hostname("[::1]:8080"); h != "::1" {
		t.Errorf("Hostname = %q", h)
	}
}
