package assertion

import (
	"github.com/oidc-broker/oidc-broker/internal/testsupport/rulevectors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRuleVectors(t *testing.T) {
	cases := rulevectors.Load(t)
	if len(cases) < 20 {
		t.Fatalf("%d cases", len(cases))
	}
	for i, c := range cases {
		r := Rule{OneOf: c.Rule.OneOf, AllOf: c.Rule.AllOf, NoneOf: c.Rule.NoneOf, Each: c.Rule.Each}
		if got := r.Allows(&Claims{Groups: c.Groups, GroupsIncomplete: c.Incomplete}); got != c.Allowed {
			t.Errorf("case %d: %+v with groups %q (incomplete %v): allowed %v, want %v", i, r, c.Groups, c.Incomplete, got, c.Allowed)
		}
	}
	if (Rule{}).Allows(nil) {
		t.Error("nobody signed in was allowed")
	}
}

func TestRequire(t *testing.T) {
	h := Require(Rule{Each: [][]string{{"starving"}, {"artist", "programmer"}}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("studio"))
	}))
	for _, c := range []struct {
		claims *Claims
		want   int
	}{
		{nil, http.StatusUnauthorized},
		{&Claims{User: "kc:1", Groups: []string{"starving"}}, http.StatusForbidden},
		{&Claims{User: "kc:1", Groups: []string{"starving", "artist"}}, http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodGet, "/studio", nil)
		if c.claims != nil {
			req = req.WithContext(NewContext(req.Context(), c.claims))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%+v: status %d, want %d", c.claims, rec.Code, c.want)
		}
	}
}

func TestFromHeaders(t *testing.T) {
	c, err := FromHeaders(http.Header{
		"X-Auth-Request-User": {"kc:1"}, "X-Auth-Request-Provider": {"kc"}, "X-Auth-Request-Email": {"zo%C3%AB@x"},
		"X-Auth-Request-Name": {"Zo%C3%AB M%C3%BCller"}, "X-Auth-Request-Preferred-Username": {"zoe"},
		"X-Auth-Request-Groups": {"a%2Cb,c%25"}, "X-Auth-Request-Groups-Incomplete": {"true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "kc:1" || c.Provider != "kc" || c.Email != "zoë@x" || c.Name != "Zoë Müller" || c.PreferredUsername != "zoe" ||
		len(c.Groups) != 2 || c.Groups[0] != "a,b" || c.Groups[1] != "c%" || !c.GroupsIncomplete {
		t.Errorf("%+v", c)
	}
	if c, err := FromHeaders(http.Header{"Accept": {"text/html"}}); c != nil || err != nil {
		t.Errorf("no headers: %+v, %v", c, err)
	}
	for _, h := range []http.Header{
		{"X-Auth-Request-Groups": {"admins"}},
		{"X-Auth-Request-User": {"admin"}, "X-Auth-Request-Provider": {"kc"}},
		{"X-Auth-Request-User": {"kc:1"}, "X-Auth-Request-Provider": {"gh"}},
		{"X-Auth-Request-User": {"kc:"}, "X-Auth-Request-Provider": {"kc"}},
		{"X-Auth-Request-User": {"kc:1%0D%0AX: y"}, "X-Auth-Request-Provider": {"kc"}},
		{"X-Auth-Request-User": {"kc:%FF"}, "X-Auth-Request-Provider": {"kc"}},
		{"X-Auth-Request-User": {"kc:1"}, "X-Auth-Request-Provider": {"kc"}, "X-Auth-Request-Groups-Incomplete": {"yes"}},
	} {
		if c, err := FromHeaders(h); err == nil {
			t.Errorf("%v accepted: %+v", h, c)
		}
	}
}

func TestSignInURLs(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{SignInURL("", "/reports?q=a b"), "/oauth2/sign_in?rd=%2Freports%3Fq%3Da+b"},
		{SignInURL("https://auth.example.com/", "https://dash.example.com/x"), "https://auth.example.com/oauth2/sign_in?rd=https%3A%2F%2Fdash.example.com%2Fx"},
		{SignOutURL("", ""), "/oauth2/sign_out"},
		{SignOutURL("https://auth.example.com", "/"), "https://auth.example.com/oauth2/sign_out?rd=%2F"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
