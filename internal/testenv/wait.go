package testenv

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Eventually polls cond every 100 ms until it holds, failing the test with
// what after bound. cond's message, if any, is added to the failure.
func Eventually(t testing.TB, bound time.Duration, what string, cond func() (ok bool, msg string)) {
	t.Helper()
	deadline := time.After(bound)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, msg := cond()
		if ok {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s\n%s", bound, what, msg)
		case <-tick.C:
		}
	}
}

// Buffer is an io.Writer safe for concurrent writers, e.g. a daemon's log.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
