package requestlog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestWithIDs: lines logged with a request's context carry its ID; others
// do not; attributes and groups keep the wrapper.
func TestWithIDs(t *testing.T) {
	var buf bytes.Buffer
	l := WithIDs(slog.New(slog.NewTextHandler(&buf, nil)))
	if WithIDs(l) != l {
		t.Error("wrapped twice")
	}
	ctx := context.WithValue(context.Background(), ContextKey{}, &ID{Sent: "rid-1"})
	l.InfoContext(ctx, "one")
	l.Info("two")
	l.With("k", "v").InfoContext(ctx, "three")
	l.WithGroup("g").InfoContext(ctx, "four", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], "msg=one request_id=rid-1") || strings.Contains(lines[1], "request_id") ||
		!strings.HasSuffix(lines[2], "msg=three k=v request_id=rid-1") || !strings.HasSuffix(lines[3], "msg=four g.k=v g.request_id=rid-1") {
		t.Errorf("log:\n%s", buf.String())
	}
	if From(ctx) != "rid-1" || From(context.Background()) != "" {
		t.Error("From")
	}
}

// TestID: an ID is made once, on first use, unless a proxy's was kept; its
// header value cannot be appended to.
func TestID(t *testing.T) {
	var made ID
	a := made.String()
	if len(a) != 16 || !Valid(a) || made.String() != a || New() == a {
		t.Errorf("made %q", a)
	}
	if v := made.Value(); len(v) != 1 || cap(v) != 1 || v[0] != a {
		t.Errorf("value %q (cap %d)", v, cap(v))
	}
	sent := ID{Sent: "proxy-1"}
	if sent.String() != "proxy-1" {
		t.Errorf("sent %q", sent.String())
	}
}

func TestValid(t *testing.T) {
	for v, want := range map[string]bool{
		"":                                 false,
		"0af7651916cd43dd8448eb211c80319c": true,
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01": true,
		"a b":                         false,
		"a\nb":                        false,
		strings.Repeat("a", MaxLen):   true,
		strings.Repeat("a", MaxLen+1): false,
		"ok-_.:+/=":                   true,
		"<script>":                    false,
	} {
		if Valid(v) != want {
			t.Errorf("Valid(%q) = %v", v, !want)
		}
	}
}

func TestHeaderProblems(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"", ""},
		{"X-Request-Id", ""},
		{"traceparent", ""},
		{"Cookie", `log.request_id_header: "Cookie" is not a request ID header`},
		{"X-Auth-Request-User", `is a header the broker sets for the apps`},
		{"x-assertion", `is a header the broker sets for the apps`},
		{"X_Request_Id", `must be a header name of letters, digits and '-'`},
		{strings.Repeat("a", 65), `must be a header name`},
	} {
		errs := HeaderProblems(c.name, "X-Assertion")
		switch {
		case c.want == "" && len(errs) != 0:
			t.Errorf("%s: %v", c.name, errs)
		case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, errs, c.want)
		}
	}
}
