package notifytest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/rewind-sre/rewind/notify"
)

// Clock is a fake notify.Clock that also watches an Outbox's attempts
// (wire OnAttempt and OnResult), so that Drive moves time on only while the
// outbox is idle: no attempt under way and its loop waiting on a timer.
// Tests thus run hours of backoff in milliseconds, without sleeping.
type Clock struct {
	mu       sync.Mutex
	now      time.Time
	timers   []*timer
	started  int
	finished int
	changed  chan struct{} // closed and replaced on every change
	next     func(notifier string, r notify.Result)
}

type timer struct {
	at time.Time
	ch chan time.Time
}

var _ notify.Clock = (*Clock)(nil)

// NewClock returns a clock at start. next, if not nil, is called by
// OnResult too (e.g. notify.Counters.Observe).
func NewClock(start time.Time, next func(notifier string, r notify.Result)) *Clock {
	return &Clock{now: start, changed: make(chan struct{}), next: next}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer fires once the clock has been advanced by d.
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t.ch, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	c.signal()
	return t.ch, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.timers {
			if x == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				c.signal()
				return true
			}
		}
		return false
	}
}

// OnAttempt is an Outbox.OnAttempt.
func (c *Clock) OnAttempt(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started++
	c.signal()
}

// OnResult is an Outbox.OnResult.
func (c *Clock) OnResult(notifier string, r notify.Result) {
	if c.next != nil {
		c.next(notifier, r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r != notify.ResultDropped {
		c.finished++
	}
	c.signal()
}

// Advance moves the clock by d, firing the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceTo(c.now.Add(d))
}

func (c *Clock) advanceTo(t time.Time) {
	if t.After(c.now) {
		c.now = t
	}
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	kept := c.timers[:0]
	for _, x := range c.timers {
		if !x.at.After(c.now) {
			x.ch <- c.now
		} else {
			kept = append(kept, x)
		}
	}
	c.timers = kept
	c.signal()
}

func (c *Clock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Drive advances the clock from one timer to the next, each time waiting
// until the outbox is idle first, until done returns true or ctx ends.
func (c *Clock) Drive(ctx context.Context, done func() bool) error {
	for !done() {
		if err := c.WaitIdle(ctx); err != nil {
			return err
		}
		if done() {
			return nil
		}
		c.mu.Lock()
		if len(c.timers) > 0 {
			earliest := c.timers[0].at
			for _, x := range c.timers {
				if x.at.Before(earliest) {
					earliest = x.at
				}
			}
			c.advanceTo(earliest)
		}
		c.mu.Unlock()
	}
	return nil
}

// WaitIdle returns once a timer is pending and every attempt has finished:
// the outbox waits for time to pass.
func (c *Clock) WaitIdle(ctx context.Context) error {
	for {
		c.mu.Lock()
		idle, ch := len(c.timers) > 0 && c.started == c.finished, c.changed
		c.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
