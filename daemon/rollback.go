package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/plan"
)

// Rollback rolls one system back now, in the calling goroutine, through
// the same runner the controller uses (`rewind rollback`). A rollback of
// the system that a previous process left unfinished is finished first,
// and is returned as the rollback asked for (resumed is true). Its steps
// and end are published like the controller's (notices, post-mortem,
// Options.Events). ctx is the process's lifetime: when it ends, the step
// under way is interrupted and stays in the journal.
func (d *Daemon) Rollback(ctx context.Context, system, reason, requester string) (rb *rewind.Rollback, resumed bool, err error) {
	b, err := d.gen.Load().system(system)
	if err != nil {
		return nil, false, err
	}
	if b.runner == nil {
		return nil, false, fmt.Errorf("%w: %s", controller.ErrNoExecutor, system)
	}
	left, err := b.runner.ResumeSystem(ctx, system)
	for _, r := range left {
		d.ended(ctx, r, err)
		if r.System == system {
			rb, resumed = r, true
		}
	}
	if resumed || err != nil {
		return rb, resumed, err
	}
	rb, err = b.runner.Start(ctx, system, reason, requester, nil)
	d.ended(ctx, rb, err)
	return rb, false, err
}

// ended publishes the end of a rollback run outside the controller.
func (d *Daemon) ended(ctx context.Context, rb *rewind.Rollback, err error) {
	if rb == nil || rb.State == rewind.RollbackRunning || errors.Is(err, rewind.ErrRollbackInProgress) {
		return
	}
	e := rewind.Event{Kind: rewind.EventRollbackEnded, System: rb.System, RollbackID: rb.ID, Rollback: rb,
		Decision: rb.Decision, Reason: rb.Error, At: d.opt.Now()}
	if err != nil {
		e.Reason = err.Error()
	}
	d.events.Publish(context.WithoutCancel(ctx), e)
}

// DryRun lists the exact changes a rollback of system would make now,
// changing nothing.
func (d *Daemon) DryRun(ctx context.Context, system, reason string) ([]plan.PlannedStep, error) {
	b, err := d.gen.Load().system(system)
	if err != nil {
		return nil, err
	}
	if b.runner == nil {
		return nil, fmt.Errorf("%w: %s", controller.ErrNoExecutor, system)
	}
	return b.runner.DryRun(ctx, system, reason)
}

// Deliver runs the outbox's deliveries until ctx ends (a command that
// does not Run the daemon, such as `rewind rollback`).
func (d *Daemon) Deliver(ctx context.Context) error { return d.outbox.Run(ctx) }

// Flush waits, at most within, until no notice is pending in the store.
// What is still pending is delivered by the next rewind process on the
// store.
func (d *Daemon) Flush(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond) // the store has no change feed
	defer tick.Stop()
	for {
		pending, err := d.opt.Store.Notices(ctx, notify.Filter{State: notify.Pending, Limit: 1})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
