package service

import (
	"fmt"
	"sync"
	"time"
)

// Request is one answered request, as the service's access log records it.
type Request struct {
	At       time.Time     `json:"at"` // when it arrived
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Status   int           `json:"status"`
	Duration time.Duration `json:"duration"`
	Release  string        `json:"release"` // the release that answered it
	Fault    Fault         `json:"fault"`   // the fault switched on when it arrived
}

// String is the request's access-log line.
func (r Request) String() string {
	return fmt.Sprintf("%s %s %s %d %.1fms release=%s fault=%s",
		r.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), r.Method, r.Path, r.Status,
		float64(r.Duration.Microseconds())/1000, r.Release, r.Fault)
}

// ring keeps the last len(buf) requests. It is safe for concurrent use.
type ring struct {
	mu   sync.Mutex
	buf  []Request
	next int  // where the next request goes
	full bool // buf has wrapped around
}

func newRing(n int) *ring { return &ring{buf: make([]Request, n)} }

func (r *ring) add(req Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = req
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// requests returns the kept requests, oldest first.
func (r *ring) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Request(nil), r.buf[:r.next]...)
	}
	out := make([]Request, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
