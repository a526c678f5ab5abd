package session

import (
	"bytes"
	"encoding/gob"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oidc-broker/oidc-broker/providers"
)

var updateGolden = flag.Bool("update-session-golden", false, "rewrite testdata/session/*.gob from the current encoding")

// goldenSessionValues are the values a session holds (or held, in earlier
// versions), one per key, as scs encodes them. Each golden file is one
// session with one key, so that its bytes do not depend on map order.
func goldenSessionValues() map[string]any {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return map[string]any{
		keyIdentity: providers.Identity{Provider: "google", Subject: "1234", Email: "a@example.com",
			EmailVerified: true, Name: "A B", PreferredUsername: "ab", Groups: []string{"g:admins", "staff"},
			GroupsIncomplete: true, AuthTime: at},
		keyTokens:   Tokens{IDToken: "eyJ.id.token", RefreshToken: "rt", Expiry: at.Add(time.Hour), SID: "sid-1"},
		keyCSRF:     "csrf-token",
		keyRemember: true,
		keySignOut:  SignOutReturn{Provider: "google", State: "st", RD: "/after", Created: at},
		// Earlier versions kept pending logins in the session.
		keyPending: map[string]legacyPending{"st": {State: "st", Provider: "google", Nonce: "n", Verifier: "v",
			RedirectURI: "https://a.example/oauth2/callback/google", RD: "/", Created: at, Remember: true, Browser: "b"}},
	}
}

// registeredNames are the names gob gives the concrete types of session
// values, by key: a session names them in its bytes. They must never
// change (see TestSessionEncodingGolden). Strings and bools are gob's own.
var registeredNames = map[string]string{
	keyIdentity: "github.com/oidc-broker/oidc-broker/providers.Identity",
	keyTokens:   "github.com/oidc-broker/oidc-broker/broker.sessionTokens",
	keySignOut:  "github.com/oidc-broker/oidc-broker/broker.signOutReturn",
	keyPending:  "map[string]broker.pendingLogin",
	keyCSRF:     "string",
	keyRemember: "bool",
}

// TestSessionEncodingGolden pins sessions as scs stores them (in Redis,
// across restarts and rolling deploys). gob names the concrete type of each
// interface value by the name it was registered under (package path
// included): a type moved to another package must keep its registered
// name, or every session already stored stops decoding and every user is
// signed out. Each golden file (written by the version before broker/ was
// split) must decode to the same value, and the current encoding must name
// the same types, so that replicas of the previous version read it too.
// (gob's type ids depend on the order types are first used in a process,
// so bytes are compared by what they name, not one by one.)
func TestSessionEncodingGolden(t *testing.T) {
	deadline := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	var codec scs.GobCodec
	for key, value := range goldenSessionValues() {
		t.Run(key, func(t *testing.T) {
			path := filepath.Join("testdata", "session", key+".gob")
			got, err := codec.Encode(deadline, map[string]any{key: value})
			if err != nil {
				t.Fatal(err)
			}
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, values, err := codec.Decode(golden)
			if err != nil {
				t.Fatalf("golden session does not decode: %v", err)
			}
			if !d.Equal(deadline) || !reflect.DeepEqual(values, map[string]any{key: value}) {
				t.Errorf("golden session decodes to %v %#v, want %v %#v", d, values, deadline, value)
			}
			name := registeredNames[key]
			if name == "" {
				t.Fatalf("no registered name for key %q", key)
			}
			if !bytes.Contains(golden, []byte(name)) || !bytes.Contains(got, []byte(name)) {
				t.Errorf("the value of %q is not registered as %q:\n got %q\nwant %q", key, name, got, golden)
			}
			// The new bytes read back as the old ones do. They differ from
			// the golden ones only in gob's type ids and in the Go name of
			// a struct in its wire type ("sessionTokens" is "Tokens" since
			// the type moved to this package), which gob does not compare:
			// it matches fields by name, as the golden files, written with
			// the old name, decoding above show.
			if _, values, err := codec.Decode(got); err != nil || !reflect.DeepEqual(values, map[string]any{key: value}) {
				t.Errorf("the current encoding decodes to %#v, %v", values, err)
			}
		})
	}
}

// TestSessionEncodingGoldenWhole decodes a session holding every key, as
// one written by the version the golden files come from.
func TestSessionEncodingGoldenWhole(t *testing.T) {
	path := filepath.Join("testdata", "session", "whole.gob")
	want := goldenSessionValues()
	var codec scs.GobCodec
	if *updateGolden {
		b, err := codec.Encode(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), want)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, values, err := codec.Decode(golden)
	if err != nil {
		t.Fatalf("golden session does not decode: %v", err)
	}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("golden session decodes to %#v, want %#v", values, want)
	}
	for _, name := range registeredNames {
		if !bytes.Contains(golden, []byte(name)) {
			t.Errorf("golden session does not name %q", name)
		}
	}
}

// TestSessionEncodingAddedFields: the fields added since the golden files
// were written (the access token; the verified auth_time and acr, kept
// for step-up) round-trip, and the golden sessions, which lack them,
// still decode (above) with them empty. gob matches fields by name, so a
// replica of the previous version ignores them (legacyTokens stands for
// its Tokens).
func TestSessionEncodingAddedFields(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	values := map[string]any{
		keyIdentity: providers.Identity{Provider: "kc", Subject: "1", AuthTime: at, AuthnTime: at.Add(-time.Minute), ACR: "gold"},
		keyTokens:   Tokens{IDToken: "id", RefreshToken: "rt", AccessToken: "at", Expiry: at, SID: "s"},
	}
	var codec scs.GobCodec
	b, err := codec.Encode(at, values)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := codec.Decode(b); err != nil || !reflect.DeepEqual(got, values) {
		t.Fatalf("round trip: %#v, %v", got, err)
	}
	type legacyTokens struct {
		IDToken, RefreshToken string
		Expiry                time.Time
		SID                   string
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values[keyTokens]); err != nil {
		t.Fatal(err)
	}
	var old legacyTokens
	if err := gob.NewDecoder(&buf).Decode(&old); err != nil || old.IDToken != "id" || old.SID != "s" {
		t.Errorf("the previous version reads %+v, %v", old, err)
	}
}
