// Package backtest replays the decision engine over history: at every step
// from From to To it runs one evaluation cycle per system and reports when,
// and why, the policy would have rolled back. `rewind analyze` is a backtest
// of the last max(for)+interval ending now.
package backtest

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
)

// Decisions of a replay (the JSON contract of analyze and backtest).
const (
	Rollback     = "rollback"
	Inconclusive = "inconclusive"
	Healthy      = "healthy"
)

// systemConcurrency bounds the systems replayed at once.
const systemConcurrency = 4

// Options bound a replay.
type Options struct {
	From, To time.Time
	Step     time.Duration // 0: each system's interval
	System   string        // "" : every system
	Progress io.Writer     // nil: silent
	// Chunk is how many steps are prefetched at once from a RangeSource.
	Chunk int
	// Concurrency bounds the queries in flight.
	Concurrency int
}

// Report is the result of a replay.
type Report struct {
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	Systems []SystemReport `json:"systems"`
	// Rollouts are the rollouts of the watch systems that started in the
	// range, each with its decision (rollouts.go).
	Rollouts []RolloutReport `json:"rollouts,omitempty"`
	// Watches names the watch systems replayed (with or without rollouts).
	Watches []string `json:"watches,omitempty"`
}

// SystemReport is one system's replay.
type SystemReport struct {
	System      string              `json:"system"`
	Decision    string              `json:"decision"`
	RollbackAt  *time.Time          `json:"rollbackAt,omitempty"`
	Firing      []string            `json:"firing,omitempty"`
	Evaluations int                 `json:"evaluations"`
	Step        string              `json:"step"`
	Queries     int                 `json:"queriesPerCycle"`
	Transitions []rewind.Transition `json:"transitions"`
	// Rollbacks lists every evaluation where a rollback trigger started firing.
	Rollbacks []Episode `json:"rollbacks,omitempty"`
	// BlindAt lists every evaluation where the system became blind.
	BlindAt  []time.Time      `json:"blindAt,omitempty"`
	Final    []TriggerFinal   `json:"final"`
	Evidence *rewind.Decision `json:"evidence,omitempty"` // the first rollback decision
}

// Episode is one would-be rollback.
type Episode struct {
	At     time.Time `json:"at"`
	Firing []string  `json:"firing"`
}

// TriggerFinal is a trigger's state at the last evaluation.
type TriggerFinal struct {
	Trigger  string              `json:"trigger"`
	State    rewind.TriggerState `json:"state"`
	Canary   *float64            `json:"canary,omitempty"`
	Baseline *float64            `json:"baseline,omitempty"`
	Reason   string              `json:"reason,omitempty"`
}

// Run replays every selected system of pol over src.
func Run(ctx context.Context, src rewind.Source, pol *policy.Policy, opt Options) (*Report, error) {
	if !opt.From.Before(opt.To) && !opt.From.Equal(opt.To) {
		return nil, fmt.Errorf("--from %s is after --to %s", opt.From.Format(time.RFC3339), opt.To.Format(time.RFC3339))
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 720
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = observe.DefaultConcurrency
	}
	rep := &Report{From: opt.From.UTC(), To: opt.To.UTC()}
	var selected, watches []*policy.System
	for _, sys := range pol.Systems {
		switch {
		case opt.System != "" && sys.Name != opt.System:
		case sys.Watch != nil:
			watches = append(watches, sys)
		default:
			selected = append(selected, sys)
		}
	}
	if len(selected) == 0 && len(watches) == 0 {
		return nil, fmt.Errorf("no system named %q in %s", opt.System, pol.File)
	}
	// Systems replay concurrently, a few at a time; each keeps its own state.
	reports := make([]*SystemReport, len(selected))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(systemConcurrency)
	for i, sys := range selected {
		g.Go(func() (err error) {
			reports[i], err = replay(gctx, src, pol, sys, opt)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range reports {
		rep.Systems = append(rep.Systems, *r)
	}
	if len(watches) > 0 {
		rs, err := runRollouts(ctx, src, pol, watches, opt)
		if err != nil {
			return nil, err
		}
		rep.Rollouts = rs
		for _, w := range watches {
			rep.Watches = append(rep.Watches, w.Name)
		}
	}
	return rep, nil
}

func replay(ctx context.Context, src rewind.Source, pol *policy.Policy, sys *policy.System, opt Options) (*SystemReport, error) {
	step := opt.Step
	if step <= 0 {
		step = sys.Interval
	}
	st := decide.NewSystemState(sys)
	queries := sys.Queries()
	sr := &SystemReport{System: sys.Name, Step: policy.Duration(step).String(), Queries: len(queries), Transitions: []rewind.Transition{}}
	rs, ranged := src.(rewind.RangeSource)
	total := int(opt.To.Sub(opt.From)/step) + 1
	var last decide.Cycle
	firingBefore := false
	for first := 0; first < total; first += opt.Chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(opt.Chunk, total-first)
		start := opt.From.Add(time.Duration(first) * step)
		cycleSrc := src
		if ranged {
			cycleSrc = prefetch(ctx, rs, queries, start, start.Add(time.Duration(n-1)*step), step, opt.Concurrency)
		}
		for i := 0; i < n; i++ {
			at := start.Add(time.Duration(i) * step)
			limit := opt.Concurrency
			if ranged {
				limit = 1 // answers are in memory
			}
			obs := observe.Cycle(ctx, cycleSrc, sys, at, limit)
			last = st.Apply(at, obs, pol.Hash)
			sr.Transitions = append(sr.Transitions, last.Transitions...)
			firing := len(last.Firing) > 0
			if firing && !firingBefore {
				sr.Rollbacks = append(sr.Rollbacks, Episode{At: at.UTC(), Firing: last.Firing})
				if sr.Evidence == nil {
					sr.Evidence = last.Decision
				}
			}
			firingBefore = firing
			if last.BlindChanged && last.Blind {
				sr.BlindAt = append(sr.BlindAt, at.UTC())
			}
		}
		if opt.Progress != nil && total > opt.Chunk {
			fmt.Fprintf(opt.Progress, "backtest %s: %d/%d evaluations (%s)\n", sys.Name, first+n, total, start.Add(time.Duration(n-1)*step).UTC().Format(time.RFC3339))
		}
	}
	sr.Evaluations = st.Evaluations
	for _, ts := range st.Triggers {
		sr.Final = append(sr.Final, TriggerFinal{Trigger: ts.Trigger.Name, State: ts.State, Canary: ts.Last.Canary, Baseline: ts.Last.Baseline, Reason: ts.Last.Reason})
	}
	switch {
	case len(sr.Rollbacks) > 0:
		sr.Decision = Rollback
		at := sr.Rollbacks[0].At
		sr.RollbackAt, sr.Firing = &at, sr.Rollbacks[0].Firing
	case last.Inconclusive:
		sr.Decision = Inconclusive
	default:
		sr.Decision = Healthy
	}
	return sr, nil
}
