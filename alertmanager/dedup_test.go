package alertmanager

import (
	"fmt"
	"testing"
	"time"
)

func TestSeenForgets(t *testing.T) {
	s := newSeen(time.Hour, 3)
	if _, ok := s.reserve("a", t0); !ok {
		t.Fatal("a fresh key is held")
	}
	if id, ok := s.reserve("a", t0); ok || id != "" {
		t.Fatalf("a pending key: %q %v", id, ok)
	}
	s.settle("a", "rb-1")
	if id, ok := s.reserve("a", t0.Add(59*time.Minute)); ok || id != "rb-1" {
		t.Fatalf("a settled key: %q %v", id, ok)
	}
	if _, ok := s.reserve("a", t0.Add(time.Hour)); !ok {
		t.Fatal("an expired key is still held")
	}
	s.release("a")
	if _, ok := s.reserve("a", t0); !ok {
		t.Fatal("a released key is still held")
	}
	// Full: the oldest goes first.
	for i := 1; i <= 3; i++ {
		s.reserve(fmt.Sprint("k", i), t0.Add(time.Duration(i)*time.Second))
	}
	if len(s.entries) != 3 {
		t.Fatalf("%d entries, max 3", len(s.entries))
	}
	if _, ok := s.reserve("a", t0.Add(time.Minute)); !ok {
		t.Fatal("the oldest key was not evicted")
	}
	if _, ok := s.reserve("k3", t0.Add(time.Minute)); ok {
		t.Fatal("a newer key was evicted")
	}
}
