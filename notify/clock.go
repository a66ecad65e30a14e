package notify

import (
	"math"
	"time"
)

// Clock is the outbox's time: injected, so that tests drive the backoff.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a
	// function that stops the timer (it reports whether it stopped it).
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Backoff is the delay before a failed notice is tried again: Initial after
// the first failure, times Factor after each further one, at most Max, less a
// random part of up to Jitter of it (so that notices that failed together do
// not come back together). A receiver's Retry-After is a lower bound.
type Backoff struct {
	Initial time.Duration // default 2s
	Max     time.Duration // default 5m
	Factor  float64       // default 2
	Jitter  float64       // 0..1; default 0.5 (the delay is in [d/2, d])
}

// DefaultBackoff is the backoff of an Outbox with a zero Backoff.
var DefaultBackoff = Backoff{Initial: 2 * time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.5}

func (b Backoff) withDefaults() Backoff {
	d := DefaultBackoff
	if b.Initial > 0 {
		d.Initial = b.Initial
	}
	if b.Max > 0 {
		d.Max = b.Max
	}
	if b.Factor >= 1 {
		d.Factor = b.Factor
	}
	if b.Jitter > 0 && b.Jitter <= 1 {
		d.Jitter = b.Jitter
	}
	return d
}

// Delay is the wait after the failed attempt number attempts (1, 2, ...);
// r in [0, 1) picks the jitter.
func (b Backoff) Delay(attempts int, r float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial) * math.Pow(b.Factor, float64(max(attempts-1, 0)))
	d = min(d, float64(b.Max))
	return time.Duration(d * (1 - b.Jitter*r))
}
