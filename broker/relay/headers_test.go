package relay

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oidc-broker/oidc-broker/providers"
)

func TestHeaderValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Zoë Müller", "Zo%C3%AB M%C3%BCller"},
		{"a\r\nX-Injected: 1", "a%0D%0AX-Injected: 1"},
		{"100%", "100%25"},
		{"tab\there", "tab%09here"},
		{"", ""},
	}
	for _, c := range cases {
		got := HeaderValue(c.in)
		if got != c.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", c.in, got, c.want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != c.in {
			t.Errorf("PathUnescape(%q) = %q, %v; want the original %q", got, back, err, c.in)
		}
	}
}

func TestSetIdentityHeaders(t *testing.T) {
	h := http.Header{}
	SetIdentityHeaders(h, providers.Identity{Provider: "kc", Subject: "123", Email: "e@x", EmailVerified: false,
		PreferredUsername: "ünï", Groups: []string{"a,b", "c%", "d"}})
	if h.Get(HeaderUser) != "kc:123" || h.Get(HeaderProvider) != "kc" {
		t.Errorf("user/provider: %v", h)
	}
	if _, ok := h[HeaderEmail]; ok {
		t.Error("unverified email relayed")
	}
	if got := h.Get(HeaderGroups); got != "a%2Cb,c%25,d" {
		t.Errorf("groups %q", got)
	}
	var groups []string
	for _, g := range strings.Split(h.Get(HeaderGroups), ",") {
		v, _ := url.PathUnescape(g)
		groups = append(groups, v)
	}
	if strings.Join(groups, "|") != "a,b|c%|d" {
		t.Errorf("groups do not round-trip: %q", groups)
	}
	if h.Get(HeaderPreferredUsername) != "%C3%BCn%C3%AF" {
		t.Errorf("username %q", h.Get(HeaderPreferredUsername))
	}
	SetIdentityHeaders(h, providers.Identity{Provider: "kc", Subject: "1", Email: "v@x", EmailVerified: true})
	if h.Get(HeaderEmail) != "v@x" {
		t.Errorf("verified email %q", h.Get(HeaderEmail))
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	seen := http.Header{}
	seen["X-Auth-Request-User"] = []string{"admin"}
	seen["x-auth-request-groups"] = []string{"admins"}
	seen["X-AUTH-REQUEST-EMAIL"] = []string{"a@b"}
	seen["X_Auth_Request_User"] = []string{"admin"}
	seen["X-Auth_Request-Groups"] = []string{"admins"}
	seen["X-Real-Ip"] = []string{"6.6.6.6"}
	seen["x_real_ip"] = []string{"6.6.6.6"}
	seen["X-Forwarded-Preferred-Username"] = []string{"admin"}
	seen["remote_user"] = []string{"admin"}
	seen.Set("X-Other", "kept")
	kept := []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
		"Forwarded", "X-Forwarded-Uri", "X-Original-Uri", "X-Request-Id", "X-Http-Method-Override", "X-Forwarded-Userx", "Remote-Users"}
	for _, k := range kept { // read by proxyfix, forward-auth, the request log, the rules; or not a claim
		seen.Set(k, "kept")
	}
	StripIdentityHeaders(seen)
	for k := range seen {
		if IsIdentityHeader(k) || isClaimHeader(k) {
			t.Errorf("%s survived", k)
		}
	}
	if len(seen) != 1+len(kept) || seen.Get("X-Other") != "kept" {
		t.Errorf("unrelated header removed: %v", seen)
	}
	for _, k := range kept {
		if seen.Get(k) != "kept" {
			t.Errorf("%s removed", k)
		}
	}
}

// TestClaimHeaderListFolded: every name of claimHeaders is written as
// isClaimHeader folds it, and fits its buffer.
func TestClaimHeaderListFolded(t *testing.T) {
	for name := range claimHeaders {
		if name != strings.ToUpper(strings.ReplaceAll(name, "_", "-")) || len(name) > maxClaimHeader || !isClaimHeader(strings.ToLower(name)) {
			t.Errorf("claimHeaders: %q", name)
		}
	}
}

// TestRelayNameAndGroupsIncomplete: the display name is relayed, encoded
// like every value (CR/LF and UTF-8 percent-encoded), and the groups
// header says when the IdP's list is incomplete; neither is sent when
// there is nothing to say.
func TestRelayNameAndGroupsIncomplete(t *testing.T) {
	h := http.Header{}
	SetIdentityHeaders(h, providers.Identity{Provider: "entra", Subject: "1", Name: "Zoë Müller\r\nX-Injected: 1",
		Groups: []string{"staff"}, GroupsIncomplete: true})
	if got := h.Get(HeaderName); got != "Zo%C3%AB M%C3%BCller%0D%0AX-Injected: 1" {
		t.Errorf("%s = %q", HeaderName, got)
	}
	if back, _ := url.PathUnescape(h.Get(HeaderName)); back != "Zoë Müller\r\nX-Injected: 1" {
		t.Errorf("name does not round-trip: %q", back)
	}
	if got := h.Values(HeaderGroupsIncomplete); len(got) != 1 || got[0] != "true" {
		t.Errorf("%s = %q, want [true]", HeaderGroupsIncomplete, got)
	}
	// An Add on the shared value must not change what other requests relay.
	h.Add(HeaderGroupsIncomplete, "x")
	other := http.Header{}
	SetIdentityHeaders(other, providers.Identity{Provider: "entra", Subject: "2", GroupsIncomplete: true})
	if got := other.Values(HeaderGroupsIncomplete); len(got) != 1 || got[0] != "true" {
		t.Errorf("shared value changed by an Add: %q", got)
	}
	plain := http.Header{}
	SetIdentityHeaders(plain, providers.Identity{Provider: "kc", Subject: "1", Groups: []string{"a"}})
	for _, name := range []string{HeaderName, HeaderGroupsIncomplete} {
		if _, ok := plain[name]; ok {
			t.Errorf("%s sent without a value: %q", name, plain[name])
		}
	}
}

// TestStripNewIdentityHeaders: a client's X-Auth-Request-Name and
// -Groups-Incomplete, in any spelling, never reach an app.
func TestStripNewIdentityHeaders(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{"X-Auth-Request-Name", "x-auth-request-name", "X_Auth_Request_Name",
		"X-Auth-Request-Groups-Incomplete", "x_auth_request_groups_incomplete", "X-AUTH-REQUEST-GROUPS_INCOMPLETE"} {
		h[name] = []string{"forged"}
	}
	StripIdentityHeaders(h)
	if len(h) != 0 {
		t.Errorf("survived: %v", h)
	}
}

func TestStripConfiguredHeader(t *testing.T) {
	seen := http.Header{}
	for _, k := range []string{"X-App-Jwt", "x-app-jwt", "X_APP_JWT", "x_App-jwt"} {
		seen[k] = []string{"forged"}
	}
	seen["X-App-Jwt-Other"] = []string{"kept"}
	seen["X-App-Jw"] = []string{"kept"}
	StripIdentityHeaders(seen, "X-App-Jwt", "")
	if len(seen) != 2 || seen.Get("X-App-Jwt-Other") != "kept" || seen.Get("X-App-Jw") != "kept" {
		t.Errorf("after stripping: %v", seen)
	}
}
