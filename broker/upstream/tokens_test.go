package upstream

import (
	"net/http"
	"strings"
	"testing"
)

// TestTokensSet: the access token goes as a bearer token in Authorization
// or alone in another header, replacing the client's; an empty token
// leaves its header absent, and Clear removes both.
func TestTokensSet(t *testing.T) {
	h := http.Header{"Authorization": {"Basic client"}, "X-Id-Token": {"client"}}
	Tokens{PassAccessToken: "authorization", PassIDToken: "X-Id-Token"}.Set(h, "at", "")
	if got := h.Get("Authorization"); got != "Bearer at" {
		t.Errorf("Authorization = %q", got)
	}
	if _, ok := h["X-Id-Token"]; ok {
		t.Errorf("the client's ID token header stayed: %v", h)
	}
	h = http.Header{}
	tk := Tokens{PassAccessToken: "X-Access-Token", PassIDToken: "X-Id-Token"}
	tk.Set(h, "at", "id")
	if h.Get("X-Access-Token") != "at" || h.Get("X-Id-Token") != "id" {
		t.Errorf("headers = %v", h)
	}
	tk.Clear(h)
	if len(h) != 0 {
		t.Errorf("after Clear: %v", h)
	}
}

// TestTokensProblems: each refused header name is named with its field.
func TestTokensProblems(t *testing.T) {
	for name, want := range map[string]string{
		"X Bad":                "must be a header name",
		"Cookie":               "another meaning",
		"X-Forwarded-For":      "another meaning",
		"X-Auth-Request-Email": "identity headers",
		"X-Assertion":          "the assertion's header",
	} {
		errs := Tokens{PassAccessToken: name}.Problems("upstreams[0].", "X-Assertion")
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), `upstreams[0].pass_access_token: "`+name+`" `+"") || !strings.Contains(errs[0].Error(), want) {
			t.Errorf("%q: %v, want %q", name, errs, want)
		}
	}
	if errs := (Tokens{PassAccessToken: "X-T", PassIDToken: "x-t"}).Problems("forward_auth.", ""); len(errs) != 1 ||
		!strings.Contains(errs[0].Error(), "is already the access token's header") {
		t.Errorf("same header twice: %v", errs)
	}
	if errs := (Tokens{PassAccessToken: "Authorization", PassIDToken: "X-Id-Token"}).Problems("", ""); errs != nil {
		t.Errorf("good names refused: %v", errs)
	}
}
