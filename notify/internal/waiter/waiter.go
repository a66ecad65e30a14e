// Package waiter lets test receivers be waited on without sleeping: a
// counter whose waiters wake on every change.
package waiter

import (
	"context"
	"sync"
)

// Counter is a count that can be waited on. The zero value is ready.
type Counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

// Add adds k and wakes the waiters.
func (c *Counter) Add(k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += k
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Value returns the count.
func (c *Counter) Value() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Wait returns once the count is at least n, or ctx's error.
func (c *Counter) Wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.n >= n {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
