package broker

import "testing"

func TestSafeRedirect(t *testing.T) {
	cases := []struct {
		rd   string
		want string
	}{
		{"/", "/"},
		{"/app/page?x=1&y=%20z#frag", "/app/page?x=1&y=%20z#frag"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"", "/"},
		{"relative/path", "/"},
		{"//evil.com", "/"},
		{"//evil.com/path", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"/\\/evil.com", "/"},
		{"https://evil.com", "/"},
		{"https:evil.com", "/"},
		{"http:/evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.com", "/"},
		{"/%2f%2fevil.com", "/"},
		{"%2F%2Fevil.com", "/"},
		{"/%5Cevil.com", "/"},
		{"/%255Cevil.com", "/"},
		{"/%252F%252Fevil.com", "/"},
		{"/x\r\nSet-Cookie: a=b", "/"},
		{"/x%0d%0aSet-Cookie:%20a=b", "/"},
		{"/x%250d%250a", "/"},
		{"/\tevil", "/"},
		{"/x\x00", "/"},
		{"/%", "/"},
		{" //evil.com", "/"},
		{"/" + string(make([]byte, maxRedirectLength)), "/"},
	}
	if got := (origin{Prefix: "/auth"}).safeRedirect("//evil"); got != "/auth/" {
		t.Errorf("fallback under a prefix = %q", got)
	}
	for _, c := range cases {
		if got := (origin{}).safeRedirect(c.rd); got != c.want {
			t.Errorf("safeRedirect(%q) = %q, want %q", c.rd, got, c.want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "https:evil", "/%2F%2Fevil", "/a?b=c#d", "/%0d%0a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rd string) {
		got := (origin{}).safeRedirect(rd)
		if got == "/" {
			return
		}
		if got != rd || got[0] != '/' || len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
			t.Fatalf("safeRedirect(%q) = %q", rd, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] == 0x7f || got[i] == '\\' {
				t.Fatalf("safeRedirect(%q) kept byte %#x", rd, got[i])
			}
		}
	})
}
