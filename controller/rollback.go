package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/plan"
)

// ErrBusy: a rollback of the system is in flight already.
var ErrBusy = errors.New("a rollback of this system is in flight")

// ErrNotActing: this replica is not the leader; ask the one that is.
var ErrNotActing = errors.New("this replica is not the leader: it does not act")

// RequestRollback starts an operator's rollback of a system and returns its
// id at once; the plan runs in the background.
func (c *Controller) RequestRollback(ctx context.Context, name, reason, requester string) (string, error) {
	if !c.acting.Load() {
		return "", ErrNotActing
	}
	s, err := c.get(name)
	if err != nil {
		return "", err
	}
	id, err := c.start(ctx, s, reason, requester, nil)
	if err == nil {
		kind := rewind.EventManualRollbackRequested
		c.published(ctx, rewind.Event{Kind: kind, System: name, RollbackID: id,
			Reason: reason + " (by " + requester + ")", At: c.opt.Now()})
	}
	return id, err
}

// ErrNoExecutor: the system has no rollback executor (a notify-only
// system without one): there is nothing a rollback could change.
var ErrNoExecutor = errors.New("this system has no rollback executor (notify-only)")

// start runs the plan of s in the background, at most one per system. The
// plan runs on Run's context, not the caller's: a request's context ends
// with the request, and a shutdown must interrupt every rollback alike.
func (c *Controller) start(ctx context.Context, s *system, reason, requester string, d *rewind.Decision) (string, error) {
	if s.runner == nil {
		return "", fmt.Errorf("%w: %s", ErrNoExecutor, s.cfg.Name)
	}
	c.mu.Lock()
	if c.life != nil {
		ctx = c.life
	}
	if s.inFlight != "" {
		id := s.inFlight
		c.mu.Unlock()
		return id, fmt.Errorf("%w: %s", ErrBusy, id)
	}
	id := plan.NewID(c.opt.Now())
	s.inFlight = id
	c.mu.Unlock()
	c.opt.Log.Warn("rolling back", "system", s.cfg.Name, "rollback", id, "reason", reason, "requester", requester)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		var rb *rewind.Rollback
		err := c.safely(s.cfg.Name, "rollback", func() (err error) {
			rb, err = s.runner.StartWithID(ctx, id, s.cfg.Name, reason, requester, d)
			return err
		})
		c.finished(s, rb, err, d)
	}()
	return id, nil
}

// safely runs f, turning a panic into an error that is logged and counted:
// a rollback that panics fails loudly, it does not take the daemon down.
func (c *Controller) safely(who, stage string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(who, stage, p, string(debug.Stack()))
		}
	}()
	return f()
}

// resume continues what a previous process left unfinished, per system,
// each with its own system's runner.
func (c *Controller) resume(ctx context.Context) {
	unfinished, err := c.opt.Store.Unfinished(ctx)
	if err != nil {
		c.opt.Log.Error("cannot read unfinished rollbacks", "err", err)
		return
	}
	for _, rb := range unfinished {
		s, err := c.get(rb.System)
		if err != nil {
			c.opt.Log.Error("unfinished rollback of a system no longer in the policy", "system", rb.System, "rollback", rb.ID)
			continue
		}
		if s.runner == nil {
			c.opt.Log.Error("unfinished rollback of a system that has no executor now", "system", rb.System, "rollback", rb.ID)
			continue
		}
		c.mu.Lock()
		busy := s.inFlight != ""
		s.inFlight = rb.ID
		c.mu.Unlock()
		if busy {
			continue
		}
		c.opt.Log.Warn("resuming unfinished rollback", "system", rb.System, "rollback", rb.ID)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			var out []*rewind.Rollback
			err := c.safely(rb.System, "rollback", func() (err error) {
				out, err = s.runner.ResumeSystem(ctx, rb.System)
				return err
			})
			for _, r := range out {
				if r.ID == rb.ID {
					rb = r
				}
			}
			c.finished(s, rb, err, rb.Decision)
		}()
	}
}

// fenceReader is a Fence whose holder can be read (executor/kubernetes).
type fenceReader interface {
	Holder(ctx context.Context) (id string, active bool, err error)
}

// adopt finishes rollbacks that another controller started and did not
// complete (it died; its journal is on its own disk): the fence on the
// target names them. Running the plan again with the same id is safe:
// every step is idempotent and the fence is already held by that id.
func (c *Controller) adopt(ctx context.Context) {
	for _, s := range c.systems() {
		if s.runner == nil {
			continue
		}
		fr, ok := s.runner.Fence.(fenceReader)
		c.mu.Lock()
		busy := s.inFlight != ""
		c.mu.Unlock()
		if !ok || busy {
			continue
		}
		id, active, err := fr.Holder(ctx)
		if err != nil {
			c.opt.Log.Error("cannot read the rollback fence", "system", s.cfg.Name, "err", err)
			continue
		}
		if !active {
			continue
		}
		if _, err := c.opt.Store.Get(ctx, id); err == nil {
			continue // ours: Resume (or its record) handles it
		}
		c.mu.Lock()
		s.inFlight = id
		c.mu.Unlock()
		c.opt.Log.Warn("adopting a rollback another controller left unfinished", "system", s.cfg.Name, "rollback", id)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			var rb *rewind.Rollback
			err := c.safely(s.cfg.Name, "rollback", func() (err error) {
				rb, err = s.runner.StartWithID(ctx, id, s.cfg.Name, "finishing rollback "+id+" left unfinished by another controller", "rewind", nil)
				return err
			})
			c.finished(s, rb, err, nil)
		}()
	}
}

func (c *Controller) finished(s *system, rb *rewind.Rollback, err error, d *rewind.Decision) {
	c.mu.Lock()
	// A reload while the rollback ran made a new system of the same name
	// that carries its id: that one is freed too.
	if rb == nil || s.inFlight == rb.ID || errors.Is(err, rewind.ErrRollbackInProgress) {
		s.inFlight = ""
	}
	if cur := c.sys[s.cfg.Name]; cur != nil && cur != s && rb != nil && cur.inFlight == rb.ID {
		cur.inFlight = ""
	}
	c.mu.Unlock()
	if m := c.opt.Metrics; m != nil && rb != nil {
		result := string(rb.State)
		if errors.Is(err, rewind.ErrRollbackInProgress) {
			result = "refused"
		}
		triggers := []string{"manual"}
		if d != nil {
			triggers = d.Firing
		}
		for _, t := range triggers {
			m.Rollbacks.WithLabelValues(s.cfg.Name, t, result).Inc()
		}
		if !rb.Ended.IsZero() {
			m.RollbackDuration.Observe(rb.Ended.Sub(rb.Started).Seconds())
		}
		for _, st := range rb.Steps {
			if d := st.Duration(); d > 0 {
				m.StepDuration.WithLabelValues(string(st.Name)).Observe(d.Seconds())
			}
		}
	}
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		c.opt.Log.Warn("shutting down mid-rollback; the next start resumes it", "system", s.cfg.Name)
	case err != nil:
		c.opt.Log.Error("rollback could not run to its end", "system", s.cfg.Name, "err", err)
	case rb == nil:
		c.opt.Log.Error("ROLLBACK FAILED: no record of it came back", "system", s.cfg.Name)
	case rb.State == rewind.RollbackSucceeded:
		c.opt.Log.Info("rolled back and verified", "system", s.cfg.Name, "rollback", rb.ID, "took", rb.Ended.Sub(rb.Started).Round(time.Millisecond))
	default:
		c.opt.Log.Error("ROLLBACK FAILED", "system", s.cfg.Name, "rollback", rb.ID, "err", rb.Error)
	}
	// A rollback refused because another one holds the system has not
	// failed: the other one goes on.
	if rb != nil && rb.State != rewind.RollbackRunning && !errors.Is(err, rewind.ErrRollbackInProgress) {
		e := rewind.Event{Kind: rewind.EventRollbackEnded, System: rb.System, RollbackID: rb.ID, Rollback: rb,
			Decision: rb.Decision, Reason: rb.Error, At: c.opt.Now()}
		if err != nil {
			e.Reason = err.Error()
		}
		c.published(context.Background(), e)
	}
}

// published hands e to the controller's listener; an error is logged.
func (c *Controller) published(ctx context.Context, e rewind.Event) {
	if c.opt.Events == nil {
		return
	}
	err := c.safely(e.System, "hook", func() error { return c.opt.Events.Publish(ctx, e) })
	if err != nil {
		c.opt.Log.Error("event not published", "event", e.Kind, "system", e.System, "err", err)
	}
}

// cycleEvent is the event of one evaluation cycle; a system turning blind
// is its own event (analyzer-blind), published by the caller.
func cycleEvent(system string, cyc decide.Cycle) rewind.Event {
	return rewind.Event{Kind: rewind.EventEvaluated, System: system, At: cyc.At,
		Transitions: cyc.Transitions, Decision: cyc.Decision, Blind: cyc.Blind}
}

// SetPaused pauses or resumes automatic rollback of a system.
func (c *Controller) SetPaused(name string, paused bool) error {
	s, err := c.get(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	s.paused = paused
	c.mu.Unlock()
	if m := c.opt.Metrics; m != nil {
		v := 0.0
		if paused {
			v = 1
		}
		m.Paused.WithLabelValues(name).Set(v)
	}
	return nil
}

// Wait waits for the rollbacks in flight (after Run returned, or in tests).
func (c *Controller) Wait() { c.wg.Wait() }
