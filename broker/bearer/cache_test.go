package bearer

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

func key(i int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "token-%d", i)) }

// TestCacheBounds: the cache never holds more than its count or its
// bytes, drops the least recently used first, and forgets an entry at its
// deadline.
func TestCacheBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newCache(100, 1<<20)
	for i := range 1000 {
		c.put(key(i), Accepted{Identity: providers.Identity{Provider: "kc", Subject: fmt.Sprint(i)}}, now.Add(time.Minute))
		if i == 10 {
			c.get(key(0), now) // used: kept longer than its neighbours
		}
	}
	if c.len() != 100 {
		t.Errorf("count bound: %d entries", c.len())
	}
	if _, ok := c.get(key(999), now); !ok {
		t.Error("the newest entry is gone")
	}
	if _, ok := c.get(key(1), now); ok {
		t.Error("an old entry survived")
	}

	big := newCache(1_000_000, 64<<10)
	groups := make([]string, 100)
	for i := range groups {
		groups[i] = strings.Repeat("g", 50)
	}
	for i := range 1000 {
		big.put(key(i), Accepted{Identity: providers.Identity{Provider: "kc", Subject: fmt.Sprint(i), Groups: groups}}, now.Add(time.Minute))
	}
	if big.bytes > 64<<10 || big.len() == 0 || big.len() > 10 {
		t.Errorf("byte bound: %d bytes in %d entries", big.bytes, big.len())
	}

	c.put(key(5000), Accepted{Identity: providers.Identity{Provider: "kc", Subject: "x"}}, now.Add(time.Second))
	if _, ok := c.get(key(5000), now.Add(time.Second)); ok {
		t.Error("an entry outlived its deadline")
	}
	if _, ok := c.get(key(5000), now); ok {
		t.Error("an expired entry is not dropped")
	}
}

// TestMissingScopes reads scope as RFC 9068 writes it and scp as Entra ID
// and Okta do.
func TestMissingScopes(t *testing.T) {
	if m := missingScopes([]string{"read", "write"}, "read write admin", nil); len(m) != 0 {
		t.Errorf("scope string: %v", m)
	}
	if m := missingScopes([]string{"read", "write"}, nil, []any{"read"}); len(m) != 1 || m[0] != "write" {
		t.Errorf("scp list: %v", m)
	}
	if m := missingScopes([]string{"read"}, nil, "read"); len(m) != 0 {
		t.Errorf("scp string: %v", m)
	}
}

// TestAccessTokenTyp: RFC 9068's at+jwt, JWT, none; never another type.
func TestAccessTokenTyp(t *testing.T) {
	for typ, ok := range map[string]bool{"": true, "at+jwt": true, "application/at+jwt": true, "JWT": true,
		"logout+jwt": false, "id_token+jwt": false, "secevent+jwt": false} {
		if accessTokenTyp(typ) != ok {
			t.Errorf("typ %q: %v", typ, !ok)
		}
	}
}
