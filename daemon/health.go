package daemon

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-sre/rewind/notify"
)

// checkTimeout bounds one readiness check; checkParallel bounds how many
// run at once; results younger than checkFresh are served as they are,
// older ones are checked again first (at most one round at a time,
// whatever the rate of /readyz requests).
const (
	checkTimeout  = 5 * time.Second
	checkParallel = 4
	checkFresh    = 2 * time.Second
)

// health runs the readiness checks in the background, at their own pace
// (not at the pace of /readyz requests), and remembers what is down: the
// dependencies (each Prometheus endpoint, each cluster) and the notifiers
// whose last delivery failed. Changes are logged.
type health struct {
	log     *slog.Logger
	wake    chan struct{}
	roundMu sync.Mutex // one round at a time

	mu        sync.Mutex
	checks    []check
	at        time.Time         // when the last round started
	down      map[string]string // check name → why; nil until the first round
	notifiers map[string]string // notifier → why its last attempt failed
	extra     map[string]string // set by the daemon (leader election)
}

func newHealth(log *slog.Logger) *health {
	return &health{log: log, wake: make(chan struct{}, 1), notifiers: map[string]string{}, extra: map[string]string{}}
}

// set replaces the checks (a new policy) and runs them soon.
func (h *health) set(checks []check) {
	h.mu.Lock()
	h.checks = checks
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run checks every `every` until ctx ends.
func (h *health) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
	}
}

// refresh runs a round unless one started within checkFresh (waiting for
// a round under way).
func (h *health) refresh(ctx context.Context) {
	h.roundMu.Lock()
	defer h.roundMu.Unlock()
	h.mu.Lock()
	fresh := time.Since(h.at) < checkFresh
	h.mu.Unlock()
	if !fresh {
		h.roundLocked(ctx)
	}
}

func (h *health) round(ctx context.Context) {
	h.roundMu.Lock()
	defer h.roundMu.Unlock()
	h.roundLocked(ctx)
}

func (h *health) roundLocked(ctx context.Context) {
	h.mu.Lock()
	checks := h.checks
	h.at = time.Now()
	h.mu.Unlock()
	results := make([]string, len(checks))
	g, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	g.SetLimit(checkParallel)
	for i, c := range checks {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, checkTimeout)
			defer cancel()
			if err := c.run(cctx); err != nil {
				results[i] = c.describe(err)
			}
			return nil
		})
	}
	_ = g.Wait()
	down := map[string]string{}
	for i, c := range checks {
		if results[i] != "" {
			down[c.name] = results[i]
		}
	}
	h.mu.Lock()
	old := h.down
	h.down = down
	h.mu.Unlock()
	h.logChanges(old, down)
}

func (h *health) logChanges(old, now map[string]string) {
	for name, why := range now {
		if prev, ok := old[name]; !ok || prev != why {
			h.log.Error("dependency down", "dependency", name, "err", why)
		}
	}
	for name := range old {
		if _, ok := now[name]; !ok && old != nil {
			h.log.Info("dependency up again", "dependency", name)
		}
	}
}

// notified is the outbox's result of an attempt at a notifier.
func (h *health) notified(notifier string, r notify.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch r {
	case notify.ResultDelivered:
		delete(h.notifiers, notifier)
	case notify.ResultRetried, notify.ResultFailed, notify.ResultExpired, notify.ResultDropped:
		h.notifiers[notifier] = "its last notice was not delivered (" + string(r) + "); see the log and rewind_notifications_total"
	}
}

// setExtra records (why != "") or clears a condition the daemon itself
// checks, such as leader election.
func (h *health) setExtra(name, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if why == "" {
		delete(h.extra, name)
	} else {
		h.extra[name] = why
	}
}

// report is what /readyz shows: every piece that is down, by name.
func (h *health) report(ctx context.Context) map[string]string {
	h.refresh(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	maps.Copy(out, h.down)
	for n, why := range h.notifiers {
		out["notifier "+n] = why
	}
	maps.Copy(out, h.extra)
	return out
}
