package alertmanager

import (
	"sync"
	"time"
)

// seen remembers the alerts (fingerprint and start) that rolled a system
// back or found one in flight, so that Alertmanager's retries and repeats
// start no second rollback. It forgets an alert after ttl, and its oldest
// alert when it holds max; the controller's search of the journal covers
// what it forgot, and restarts.
type seen struct {
	ttl     time.Duration
	max     int
	mu      sync.Mutex
	entries map[string]seenEntry
}

type seenEntry struct {
	rollback string // "" while the first delivery is being handled
	at       time.Time
}

func newSeen(ttl time.Duration, max int) *seen {
	return &seen{ttl: ttl, max: max, entries: map[string]seenEntry{}}
}

// reserve claims key for the caller, who then settles or releases it. When
// the key is held already it returns false and the rollback it led to ("" if
// that delivery is still being handled).
func (s *seen) reserve(key string, now time.Time) (rollback string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, held := s.entries[key]; held && now.Sub(e.at) < s.ttl {
		return e.rollback, false
	}
	if len(s.entries) >= s.max {
		s.prune(now)
	}
	s.entries[key] = seenEntry{at: now}
	return "", true
}

// settle records the rollback a reserved key led to.
func (s *seen) settle(key, rollback string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok {
		e.rollback = rollback
		s.entries[key] = e
	}
}

// release forgets a reserved key: the alert started nothing, a later
// delivery is handled afresh.
func (s *seen) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// prune drops expired entries, then the oldest while the set is full.
func (s *seen) prune(now time.Time) {
	for k, e := range s.entries {
		if now.Sub(e.at) >= s.ttl {
			delete(s.entries, k)
		}
	}
	for len(s.entries) >= s.max {
		oldest, first := "", time.Time{}
		for k, e := range s.entries {
			if oldest == "" || e.at.Before(first) {
				oldest, first = k, e.at
			}
		}
		delete(s.entries, oldest)
	}
}
