package local

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/tempfile"
	"github.com/oidc-broker/oidc-broker/providers"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testTypes are the generic types and this one.
var testTypes = providers.Types{providers.OIDC, providers.OAuth2, Type}

// validate checks c as the broker does.
func validate(c providers.Config) error { return testTypes.Validate(c) }

// hashOf is a bcrypt hash at the lowest cost, so the tests stay fast.
func hashOf(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func localConfig(t *testing.T) providers.Config {
	t.Helper()
	htpasswd := "# staff\nalice:" + hashOf(t, "alice-pw") + "\n\nbob:" + strings.Replace(hashOf(t, "bob-pw"), "$2a$", "$2y$", 1) + "\r\n"
	return providers.Config{ID: "local", Name: "Local account", Type: providers.TypeLocal,
		HtpasswdFile: tempfile.Write(t, "users.htpasswd", htpasswd),
		GroupsFile:   tempfile.Write(t, "groups", "admins: alice\nstaff: alice, bob\n# comment\nstaff:\tbob\n"),
		Groups:       map[string][]string{"ops": {"bob"}, "admins": {"alice"}},
	}
}

func TestParseHtpasswd(t *testing.T) {
	bcryptHash := hashOf(t, "pw")
	file := strings.Join([]string{
		"alice:" + bcryptHash,                                    // 1 ok
		"bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/",              // 2 MD5 apr1
		"carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",                // 3 SHA-1
		"dave:plaintext",                                         // 4 plain
		"erin:rqXexS6ZhobKA",                                     // 5 DES crypt
		"frank:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0",               // 6 MD5-crypt
		"gina:$6$salt$hash",                                      // 7 SHA-crypt
		"alice:" + bcryptHash,                                    // 8 duplicate
		"no colon here",                                          // 9
		"heidi:$2y$10$tooshort",                                  // 10 malformed bcrypt
		":" + bcryptHash,                                         // 11 empty username
		"ivan:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA",             // 12 unknown scheme
		"judy:" + strings.Replace(bcryptHash, "$04$", "$31$", 1), // 13 cost 31
	}, "\n")
	u, errs := parseHtpasswd([]byte(file))
	if _, ok := u.hashes["alice"]; !ok || len(u.hashes) != 1 {
		t.Errorf("users = %v, want alice only", u.hashes)
	}
	want := []string{
		`line 2: user "bob": has an MD5 (apr1) hash; only bcrypt`,
		`line 3: user "carol": has a SHA-1 hash`,
		`line 4: user "dave": has a plain-text password or an unknown hash`,
		`line 5: user "erin": has a DES crypt hash`,
		`line 6: user "frank": has an MD5-crypt hash`,
		`line 7: user "gina": has a SHA-crypt hash`,
		`line 8: user "alice" is already defined on line 1`,
		`line 9: is not user:hash`,
		`line 10: user "heidi": has a malformed bcrypt hash`,
		`line 11: username is empty`,
		`line 12: user "ivan": has a hash of an unsupported scheme`,
		`line 13: user "judy": has bcrypt cost 31, above 17`,
	}
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
		}
		if strings.Contains(errs[i].Error(), "plaintext") {
			t.Errorf("error %d quotes the hash: %q", i, errs[i])
		}
	}
}

func TestLocalConfigValidate(t *testing.T) {
	if err := validate(localConfig(t)); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*providers.Config)
		want []string
	}{
		{"no htpasswd file", func(c *providers.Config) { c.HtpasswdFile = "" }, []string{"htpasswd_file: is required for a provider of type local"}},
		{"unreadable htpasswd file", func(c *providers.Config) { c.HtpasswdFile = filepath.Join(t.TempDir(), "nope") }, []string{"htpasswd_file: cannot read"}},
		{"apr1 entry", func(c *providers.Config) {
			c.HtpasswdFile = tempfile.Write(t, "h", "alice:"+hashOf(t, "x")+"\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n")
			c.GroupsFile, c.Groups = "", nil
		}, []string{`line 2: user "bob": has an MD5 (apr1) hash`}},
		{"empty htpasswd file", func(c *providers.Config) {
			c.HtpasswdFile = tempfile.Write(t, "h", "# nobody\n")
			c.GroupsFile, c.Groups = "", nil
		}, []string{"has no users"}},
		{"unknown member in the group file", func(c *providers.Config) { c.GroupsFile = tempfile.Write(t, "g", "admins: alice\nstaff: alcie\n") },
			[]string{`groups_file: "`, `line 2: group "staff": user "alcie" is not in htpasswd_file`}},
		{"group line without colon", func(c *providers.Config) { c.GroupsFile = tempfile.Write(t, "g", "admins alice\n") }, []string{"line 1: is not group: user1 user2"}},
		{"unknown inline member", func(c *providers.Config) { c.Groups = map[string][]string{"ops": {"bob", "mallory"}} },
			[]string{`groups.ops[1]: user "mallory" is not in htpasswd_file`}},
		{"group name with a comma", func(c *providers.Config) { c.Groups = map[string][]string{"a,b": {"bob"}} }, []string{`groups.a,b: group name "a,b" contains ','`}},
		{"OIDC settings", func(c *providers.Config) {
			c.Issuer, c.ClientID, c.ClientSecret, c.Scopes = "https://x", "c", "s", []string{"openid"}
			c.Claims.Email = "mail"
		}, []string{"issuer: is not used by providers of type local", "client_id: is not used", "client_secret: is not used", "scopes: is not used", "claims.email: is not used"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := localConfig(t)
			c.edit(&cfg)
			err := validate(cfg)
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in %v", w, err)
				}
			}
		})
	}
	t.Run("local settings on an OpenID provider", func(t *testing.T) {
		err := validate(providers.Config{ID: "kc", Issuer: "https://kc.example", ClientID: "c", ClientSecret: "s",
			HtpasswdFile: "x", BasicAuthPaths: []string{"/api/"}})
		for _, w := range []string{"htpasswd_file: is only used by providers of type local", "basic_auth_paths: is only used"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("missing %q in %v", w, err)
			}
		}
	})
}

func TestLocalProvider(t *testing.T) {
	cfg := localConfig(t)
	cfg.Claims = providers.ClaimsConfig{GroupPrefix: "local:", StaticGroups: []string{"everyone"}}
	p, err := testTypes.Open(cfg, providers.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pa, ok := p.(providers.PasswordAuthenticator)
	if !ok {
		t.Fatal("a local provider is not a PasswordAuthenticator")
	}
	ctx := context.Background()
	res, err := pa.Authenticate(ctx, "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	id := res.Identity
	if id.User() != "local:alice" || id.PreferredUsername != "alice" || id.Email != "" ||
		!reflect.DeepEqual(id.Groups, []string{"local:admins", "local:staff", "everyone"}) || id.AuthTime.IsZero() {
		t.Errorf("identity = %+v", id)
	}
	// $2y$ (htpasswd's spelling) is accepted; groups from the file's
	// repeated lines and the inline map.
	res, err = pa.Authenticate(ctx, "bob", "bob-pw")
	if err != nil || !reflect.DeepEqual(res.Identity.Groups, []string{"local:staff", "local:ops", "everyone"}) {
		t.Fatalf("bob: %v %+v", err, res)
	}
	for _, c := range [][2]string{{"alice", "wrong"}, {"mallory", "alice-pw"}, {"alice", ""}, {"", ""}, {"Alice", "alice-pw"}} {
		if _, err := pa.Authenticate(ctx, c[0], c[1]); !errors.Is(err, providers.ErrInvalidCredentials) {
			t.Errorf("%q/%q: %v", c[0], c[1], err)
		}
	}
	if _, err := p.Exchange(ctx, providers.Callback{}); err == nil {
		t.Error("Exchange succeeded on a local provider")
	}
	if st := p.Status(); !st.Available {
		t.Errorf("status %+v", st)
	}
}

// TestLocalUnknownUserRunsOneComparison: an unknown user costs one bcrypt
// comparison against the dummy hash, at the users' cost, like a known one.
func TestLocalUnknownUserRunsOneComparison(t *testing.T) {
	p, err := testTypes.Open(localConfig(t), providers.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lp := p.(*provider)
	var calls atomic.Int32
	var hashes []string
	lp.compare = func(hash, password []byte) error {
		calls.Add(1)
		hashes = append(hashes, string(hash))
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	for _, user := range []string{"mallory", "alice"} {
		calls.Store(0)
		if _, err := lp.Authenticate(context.Background(), user, "guess"); !errors.Is(err, providers.ErrInvalidCredentials) {
			t.Fatalf("%s: %v", user, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("%s: %d comparisons, want 1", user, n)
		}
	}
	if hashes[0] != string(lp.dummy) {
		t.Error("the unknown user was not compared with the dummy hash")
	}
	cost, err := bcrypt.Cost(lp.dummy)
	if err != nil || cost != bcrypt.MinCost {
		t.Errorf("dummy hash cost %d (%v), want the users' %d", cost, err, bcrypt.MinCost)
	}
	// Even a password that matches the dummy hash is refused for an
	// unknown user.
	lp.compare = func(hash, password []byte) error { return nil }
	if _, err := lp.Authenticate(context.Background(), "mallory", "x"); !errors.Is(err, providers.ErrInvalidCredentials) {
		t.Errorf("unknown user accepted: %v", err)
	}
}

func TestLocalAuthCodeURL(t *testing.T) {
	p, err := testTypes.Open(localConfig(t), providers.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.AuthCodeURL(context.Background(), providers.AuthRequest{State: "st+/=", RedirectURI: "https://example.com/auth/oauth2/callback/local",
		FormURL: "https://example.com/auth/login-form", LoginHint: "alice"})
	if want := "https://example.com/auth/login-form?state=st%2B%2F%3D&username=alice"; err != nil || got != want {
		t.Errorf("AuthCodeURL = %q, %v; want %q", got, err, want)
	}
	if _, err := p.AuthCodeURL(context.Background(), providers.AuthRequest{State: "s", RedirectURI: "https://example.com/oauth2/callback/local"}); err == nil {
		t.Error("a request without the form's URL was accepted")
	}
}

func TestLocalFilesBrokenAfterValidation(t *testing.T) {
	cfg := localConfig(t)
	if err := os.WriteFile(cfg.HtpasswdFile, []byte("alice:plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := open(cfg, providers.Options{Logger: quiet, Now: time.Now})
	var unavailable *providers.UnavailableError
	if st := p.Status(); st.Available {
		t.Error("available with a broken user file")
	}
	if _, err := p.AuthCodeURL(context.Background(), providers.AuthRequest{RedirectURI: "https://x/oauth2/callback/local", FormURL: "https://x/form"}); !errors.As(err, &unavailable) {
		t.Errorf("AuthCodeURL: %v", err)
	}
	if _, err := p.(providers.PasswordAuthenticator).Authenticate(context.Background(), "alice", "plain"); !errors.As(err, &unavailable) {
		t.Errorf("Authenticate: %v", err)
	}
}

func TestProbeLocal(t *testing.T) {
	r := testTypes.Probe(context.Background(), providers.Config{ID: "staff", Type: providers.TypeLocal, HtpasswdFile: "/etc/broker/staff.htpasswd"}, nil)
	if len(r.Findings) != 1 || r.Findings[0].Check != "htpasswd_file" || r.Findings[0].Severity != providers.SeverityOK ||
		!strings.Contains(r.Findings[0].Message, "/etc/broker/staff.htpasswd") {
		t.Errorf("local: %+v", r.Findings)
	}
}
