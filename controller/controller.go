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
	// BatchSystems bounds the systems evaluated together at one instant
	// with grouped queries (DefaultBatchSystems when zero; 1 evaluates
	// every system on its own).
	BatchSystems int
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
	gen uint64         // policy generation: batches are rebuilt when it changes
	wg  sync.WaitGroup // rollbacks and cycles in flight
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
	if opt.Metrics != nil {
		opt.Metrics.TriggerState.from(c.triggerStates)
	}
	return c, nil
}

// triggerStates yields every trigger's state, by system name.
func (c *Controller) triggerStates(yield func(system, trigger string, st rewind.TriggerState)) {
	type state struct {
		system, trigger string
		st              rewind.TriggerState
	}
	var all []state
	for _, s := range c.systems() {
		c.mu.Lock()
		for _, ts := range s.state.Triggers {
			all = append(all, state{s.cfg.Name, ts.Trigger.Name, ts.State})
		}
		c.mu.Unlock()
	}
	for _, x := range all {
		yield(x.system, x.trigger, x.st)
	}
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
	c.gen++
	c.mu.Unlock()
	closeWatchers(old)
	return nil
}

// Run resumes unfinished rollbacks (its own, from the journal, and those
// another controller left on the targets' fences), then evaluates every
// system at its interval until ctx ends (see schedule.go: systems that read
// one source at one interval are evaluated in batches with grouped queries,
// each batch at its own phase of the interval). A policy reload takes effect
// at the next tick. Rollbacks in flight when ctx ends stay in the journal
// for the next start.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.life = ctx
	c.mu.Unlock()
	c.acting.Store(true)
	defer c.acting.Store(false)
	c.resume(ctx)
	c.adopt(ctx)
	c.schedule(ctx)
	c.wg.Wait()
	return nil
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

// Evaluate runs one evaluation cycle of a system alone at `at` (its own
// queries, not grouped) and acts on it.
func (c *Controller) Evaluate(ctx context.Context, name string, at time.Time) (decide.Cycle, error) {
	s, err := c.get(name)
	if err != nil {
		return decide.Cycle{}, err
	}
	if s.live != nil {
		return c.acted(ctx, s, c.evaluateWatch(ctx, s, at))
	}
	obs := observe.Cycle(ctx, s.source, s.cfg, at, s.cfg.Prometheus.MaxInFlight)
	return c.act(ctx, s, at, obs)
}

// act applies one cycle's observations to the system's state, records it
// and starts a rollback when one is decided.
func (c *Controller) act(ctx context.Context, s *system, at time.Time, obs []rewind.Observation) (decide.Cycle, error) {
	c.mu.Lock()
	cyc := s.state.Apply(at, obs, c.pol.Hash)
	return c.acted(ctx, s, judged{cyc: cyc, obs: obs})
}

// judged is one evaluated cycle of a system: its decision, the
// observations it came from and, for a watch system, what it judged.
type judged struct {
	cyc   decide.Cycle
	obs   []rewind.Observation
	about string
}

// acted records a cycle applied to s's state and starts a rollback when
// one is decided. Called with c.mu held; releases it.
func (c *Controller) acted(ctx context.Context, s *system, j judged) (decide.Cycle, error) {
	name, cyc, obs := s.cfg.Name, j.cyc, j.obs
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
	why := j.about + "triggers firing: " + strings.Join(cyc.Firing, ", ")
	var err error
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
	errs := 0
	for _, o := range obs {
		if o.Outcome == rewind.OutcomeError {
			errs++
		}
	}
	if errs > 0 {
		m.QueryErrors.WithLabelValues(name).Add(float64(errs))
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
