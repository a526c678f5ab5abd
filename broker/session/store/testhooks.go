package store

// What the tests of the packages above (a broker on Redis, two replicas
// sharing one) need to see of the token cache. Nothing in the broker calls
// these.

// Cached reports whether the token cache holds the session of token.
func (s *Redis) Cached(token string) bool {
	if s.cache == nil {
		return false
	}
	_, ok := s.cache.find(token)
	return ok
}

// Subscribed reports whether the token cache is in use: its subscription
// to the invalidation channel is up.
func (s *Redis) Subscribed() bool { return s.cache != nil && s.cache.isUp() }

// Flushes counts the times the token cache was emptied (a message that is
// no token's hash empties it): a test publishes one and waits for the
// count to move, to know that every earlier invalidation arrived.
func (s *Redis) Flushes() uint64 {
	if s.cache == nil {
		return 0
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.flushes
}

// Subscribe starts the subscription now rather than at the first cached
// read.
func (s *Redis) Subscribe() {
	if s.feed != nil {
		s.feed.start()
	}
}

// LoseInvalidations makes the subscription drop every message while it
// stays up, so that only session.cache_ttl bounds what the cache serves.
func (s *Redis) LoseInvalidations(lose bool) {
	if s.feed != nil {
		s.feed.lose.Store(lose)
	}
}

// Len is the number of sessions the memory store keeps (expired ones not
// yet swept included).
func (m *MemorySessions) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.items)
}

// Sizes is the number of index keys and of marks (single-use marks and
// locks) the memory backend keeps.
func (m *MemoryBackend) Sizes() (index, marks int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.index), len(m.marks)
}
