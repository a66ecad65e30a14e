// Package controller is the daemon's core: it evaluates every system of the
// policy at its interval, runs the rollback plan when a rollback trigger
// starts firing (or an operator asks), keeps watching afterwards, and
// reports what it sees through metrics, events and the HTTP API.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/watch"
)

// BuildFunc assembles the rollback runner and metrics source of a system.
type BuildFunc func(sys *policy.System) (*plan.Runner, rewind.Source, error)

// Options configure a Controller.
type Options struct {
	Policy  *policy.Policy
	Store   plan.Store
	Build   BuildFunc
	Metrics *Metrics
	// Events receives what the controller sees and does: every cycle
	// (rewind.EventEvaluated), a system turning blind, an operator's
	// rollback request, every rollback's end. Nil: nobody listens.
	Events rewind.Publisher
	Log    *slog.Logger
	Now    func() time.Time
	// Watcher builds the Watcher of each rollout-watch system (watch.go);
	// default LiveWatcher.
	Watcher WatcherFunc
}

// Controller watches every system of a policy.
type Controller struct {
	opt Options
	mu  sync.Mutex
	pol *policy.Policy
	sys map[string]*system
	wg  sync.WaitGroup // rollbacks in flight
	// life is Run's context: rollbacks run on it, whoever asked for them,
	// so that a shutdown interrupts them (they stay in the journal).
	life context.Context
	// acting is true while Run runs: with leader election, only the leader
	// evaluates and rolls back.
	acting atomic.Bool
}

// system is one watched system.
type system struct {
	cfg      *policy.System
	state    *decide.SystemState
	runner   *plan.Runner
	source   rewind.Source
	live     Watcher // a rollout-watch system's (watch.go); nil for a canary system
	paused   bool
	inFlight string // id of the rollback running now
	// evaluating is set while a cycle runs: a slow cycle delays the next
	// one instead of overlapping it, so cycles apply in time order.
	evaluating atomic.Bool
}

// ErrUnknownSystem: no system of that name in the policy.
var ErrUnknownSystem = errors.New("no such system")

// New builds a controller; every system's runner is built now.
func New(opt Options) (*Controller, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{opt: opt}
	sys, err := c.build(opt.Policy, nil)
	if err != nil {
		return nil, err
	}
	c.pol, c.sys = opt.Policy, sys
	return c, nil
}

// build makes the systems of pol, keeping the state of those in old.
func (c *Controller) build(pol *policy.Policy, old map[string]*system) (map[string]*system, error) {
	out := map[string]*system{}
	reg := &watch.Registry{}
	for _, cfg := range pol.Systems {
		r, src, err := c.opt.Build(cfg)
		if err != nil {
			return nil, fmt.Errorf("system %s: %w", cfg.Name, err)
		}
		s := &system{cfg: cfg, state: decide.NewSystemState(cfg), runner: r, source: src}
		if s.live, err = c.newWatcher(pol, cfg, src, reg); err != nil {
			return nil, fmt.Errorf("system %s: %w", cfg.Name, err)
		}
		if o := old[cfg.Name]; o != nil {
			s.paused, s.inFlight = o.paused, o.inFlight
		}
		out[cfg.Name] = s
	}
	return out, nil
}

// Reload swaps in a new, already validated policy; systems keep their pause
// and in-flight rollback, trigger states start over.
func (c *Controller) Reload(pol *policy.Policy) error {
	c.mu.Lock()
	old := c.sys
	c.mu.Unlock()
	sys, err := c.build(pol, old)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.pol, c.sys = pol, sys
	c.mu.Unlock()
	closeWatchers(old)
	return nil
}

// Run resumes unfinished rollbacks (its own, from the journal, and those
// another controller left on the targets' fences), then evaluates every system at its
// interval until ctx ends. A policy reload takes effect at the next tick.
// Rollbacks in flight when ctx ends stay in the journal for the next start.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.life = ctx
	c.mu.Unlock()
	c.acting.Store(true)
	defer c.acting.Store(false)
	c.resume(ctx)
	c.adopt(ctx)
	// A fine tick keeps each system on its own interval without drift.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	next := map[string]time.Time{}
	for {
		now := c.opt.Now()
		for _, s := range c.systems() {
			at, ok := next[s.cfg.Name]
			if ok && now.Before(at) || s.evaluating.Load() {
				continue
			}
			if !ok || now.Sub(at) > s.cfg.Interval {
				at = now // first cycle, or fell behind: start over from now
			}
			next[s.cfg.Name] = at.Add(s.cfg.Interval)
			s.evaluating.Store(true)
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer s.evaluating.Store(false)
				c.Evaluate(ctx, s.cfg.Name, at)
			}()
		}
		select {
		case <-ctx.Done():
			c.wg.Wait()
			return nil
		case <-tick.C:
		}
	}
}

func (c *Controller) systems() []*system {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*system, 0, len(c.sys))
	for _, s := range c.sys {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

func (c *Controller) get(name string) (*system, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sys[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSystem, name)
	}
	return s, nil
}

// Evaluate runs one evaluation cycle of a system at `at` and acts on it.
func (c *Controller) Evaluate(ctx context.Context, name string, at time.Time) (decide.Cycle, error) {
	s, err := c.get(name)
	if err != nil {
		return decide.Cycle{}, err
	}
	var (
		obs   []rewind.Observation
		cyc   decide.Cycle
		about string // what a watch system judges
	)
	if s.live != nil {
		cyc, obs, about = c.evaluateWatch(ctx, s, at)
	} else {
		obs = observe.Cycle(ctx, s.source, s.cfg, at, 0)
		c.mu.Lock()
		cyc = s.state.Apply(at, obs, c.pol.Hash)
	}
	paused, inFlight, mode := s.paused, s.inFlight, s.cfg.Rollback.Mode
	c.mu.Unlock()
	c.record(s, cyc, obs)
	c.published(ctx, cycleEvent(name, cyc))
	if cyc.BlindChanged && cyc.Blind {
		c.published(ctx, rewind.Event{Kind: rewind.EventAnalyzerBlind, System: name, At: cyc.At,
			Reason: "its queries failed 3 cycles in a row: no rollback can be decided"})
	}
	if cyc.Decision == nil {
		return cyc, nil
	}
	why := about + "triggers firing: " + strings.Join(cyc.Firing, ", ")
	switch {
	case mode != policy.ModeAutomatic:
		c.opt.Log.Warn("rollback decided; policy mode is notify-only", "system", name, "reason", why)
	case paused:
		c.opt.Log.Warn("rollback decided; automatic rollback of this system is paused", "system", name, "reason", why)
	case inFlight != "":
		c.opt.Log.Info("rollback decided; one is already in flight", "system", name, "rollback", inFlight)
	default:
		_, err = c.start(ctx, s, why, "rewind", cyc.Decision)
	}
	return cyc, err
}

// record updates the metrics of one cycle.
func (c *Controller) record(s *system, cyc decide.Cycle, obs []rewind.Observation) {
	m := c.opt.Metrics
	if m == nil {
		return
	}
	name := s.cfg.Name
	m.Evaluations.WithLabelValues(name).Inc()
	for i, ts := range s.state.Triggers {
		m.setTriggerState(name, ts.Trigger.Name, ts.State)
		if obs[i].Outcome == rewind.OutcomeError {
			m.QueryErrors.WithLabelValues(name).Inc()
		}
	}
	blind := 0.0
	if cyc.Blind {
		blind = 1
	}
	m.Blind.WithLabelValues(name).Set(blind)
	if cyc.BlindChanged && cyc.Blind {
		c.opt.Log.Error("system is BLIND: its queries failed 3 cycles in a row; no rollback can be decided", "system", name)
	}
	if d := cyc.Decision; d != nil {
		first := d.At
		for _, t := range d.Triggers {
			if t.State == rewind.StateFiring && !t.ActiveAt.IsZero() && t.ActiveAt.Before(first) {
				first = t.ActiveAt
			}
		}
		m.Detection.Observe(d.At.Sub(first).Seconds())
	}
}
