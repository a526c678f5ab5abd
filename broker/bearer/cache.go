package bearer

import (
	"container/list"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// cache keeps the identities of accepted tokens by the SHA-256 of the
// token (never the token), each until its own deadline, the least recently
// used going first when either bound is reached. Only accepted tokens
// enter it, so a client sending random tokens never grows it.
type cache struct {
	maxEntries, maxBytes int

	mu    sync.Mutex
	m     map[[32]byte]*list.Element
	lru   list.List // front: most recently used; values are *entry
	bytes int
}

type entry struct {
	key   [32]byte
	a     Accepted
	until time.Time
	size  int
}

func newCache(maxEntries, maxBytes int) *cache {
	return &cache{maxEntries: maxEntries, maxBytes: maxBytes, m: map[[32]byte]*list.Element{}}
}

func (c *cache) get(key [32]byte, now time.Time) (Accepted, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return Accepted{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.until) {
		c.remove(el)
		return Accepted{}, false
	}
	c.lru.MoveToFront(el)
	return e.a, true
}

func (c *cache) put(key [32]byte, a Accepted, until time.Time) {
	e := &entry{key: key, a: a, until: until, size: 2 * sizeOf(a.Identity)} // the identity, and about as much derived from it
	if e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		c.remove(el)
	}
	c.m[key] = c.lru.PushFront(e)
	c.bytes += e.size
	for len(c.m) > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.m, e.key)
	c.bytes -= e.size
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// sizeOf estimates the memory an entry holds: its strings and a fixed
// overhead for the entry, the list element and the map slot.
func sizeOf(id providers.Identity) int {
	n := 256 + len(id.Provider) + len(id.Subject) + len(id.Email) + len(id.Name) + len(id.PreferredUsername) + len(id.ACR)
	for _, g := range id.Groups {
		n += 16 + len(g)
	}
	return n
}
