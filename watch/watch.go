// Package watch judges one rollout of a plain Deployment with Rewind's own
// machinery: the watch system's triggers are instantiated for the rollout
// (policy.System.Instantiate), observed by package observe and decided by
// package decide, so holds, the judge, insufficient data and evidence are
// exactly those of a canary system.
//
// A watch has two phases. While the previous revision still serves
// (its request rate over the traffic window is positive), the new revision is
// the canary and the previous one the baseline, over the same minutes. Once
// it no longer serves, the new revision is held against the service's own
// history: each two-sided trigger is evaluated once per reference window
// (the window before the rollout, and the same hours a season earlier, see
// Reference) and holds only when the new revision is worse than every
// reference that has data; at least policy.History.MinSeasons seasonal
// references must have data, else the trigger has insufficient data. A
// degradation that the service's peers show at the same time, against their
// own history, is a shared incident: not the rollout's fault, never a
// rollback by itself.
package watch

import (
	"context"
	"fmt"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/rollout"
)

// Phase is where a watch is.
type Phase string

const (
	// PhaseCompare: both revisions serve; new against previous.
	PhaseCompare Phase = "compare"
	// PhaseHistory: the previous revision is gone; new against history.
	PhaseHistory Phase = "history"
)

// Peer is a service that a degradation is compared with.
type Peer struct {
	Name     string // a watch system's name, or the selector itself
	Selector string // the service's series selector
	// System is the peer's watch system name when it is one, so that a peer
	// that was deployed itself is left out.
	System string
}

// MaxPeers bounds the peers a watch compares a degradation with (the first
// ones, in the policy's order): each costs its history queries at every
// evaluation where a trigger holds.
const MaxPeers = 16

// Options configure a watch.
type Options struct {
	// Peers are the services compared with before a degradation is blamed on
	// the rollout (see Peers).
	Peers []Peer
	// Deployed reports whether a peer watch system had a rollout that
	// started in [from, to]; such a peer's degradation may be its own. nil:
	// no peer was deployed.
	Deployed func(system string, from, to time.Time) bool
	// Concurrency is passed to observe.Cycle (1 for in-memory sources).
	Concurrency int
}

// Watch is the judgement of one rollout.
type Watch struct {
	Rollout rollout.Rollout
	// System is the rollout's system in the compare phase: canary the new
	// revision, baseline the previous one. Its triggers are the template's.
	System *policy.System
	// Phase is the current phase; Completed the first evaluation in the
	// history phase (zero before).
	Phase     Phase
	Completed time.Time

	tmpl    *policy.System
	history *historySystem
	peers   []*peerSystem
	serving string // request rate of the previous revision
	state   *decide.SystemState
	opt     Options
}

// Cycle is one evaluation of a watch.
type Cycle struct {
	decide.Cycle
	Phase Phase `json:"phase"`
	// Shared lists the triggers whose degradation peers showed at the same
	// time: reported as a shared incident, not judged against the rollout.
	Shared []SharedIncident `json:"shared,omitempty"`
	// Observations are this cycle's, one per trigger of System.
	Observations []rewind.Observation `json:"-"`
}

// SharedIncident is one trigger's degradation shared with peers.
type SharedIncident struct {
	At      time.Time `json:"at"`
	Trigger string    `json:"trigger"`
	Peers   []string  `json:"peers"`
}

// New prepares the watch of r by the watch system tmpl.
func New(tmpl *policy.System, r rollout.Rollout, opt Options) (*Watch, error) {
	w := tmpl.Watch
	if w == nil {
		return nil, fmt.Errorf("system %s is not a watch system", tmpl.Name)
	}
	if r.Missing != "" {
		return nil, fmt.Errorf("rollout %s of %s cannot be judged: %s", r.Revision, r.Deployment, r.Missing)
	}
	newSel, service := w.RevisionSelector(r.Deployment, r.Revision), w.ServiceSelector(r.Deployment)
	prevSel := service
	if r.Previous != "" {
		prevSel = w.RevisionSelector(r.Deployment, r.Previous)
	}
	cmp, err := tmpl.Instantiate(r.System, r.Deployment, newSel, prevSel)
	if err != nil {
		return nil, err
	}
	hist, err := newHistory(tmpl, r.System, r.Deployment, newSel, service, r.Start, false)
	if err != nil {
		return nil, err
	}
	wt := &Watch{Rollout: r, System: cmp, Phase: PhaseCompare, tmpl: tmpl, history: hist, state: decide.NewSystemState(cmp), opt: opt}
	if r.Previous == "" {
		wt.Phase = PhaseHistory // nothing to compare with
	} else {
		wt.serving = w.ServingQuery(prevSel)
	}
	for _, p := range opt.Peers {
		if p.System == r.System {
			continue
		}
		if len(wt.peers) == MaxPeers {
			break
		}
		ps, err := newHistory(tmpl, r.System+"~"+p.Name, r.Deployment, p.Selector, p.Selector, r.Start, true)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", p.Name, err)
		}
		wt.peers = append(wt.peers, &peerSystem{Peer: p, hist: ps, seen: map[int]time.Time{}})
	}
	return wt, nil
}

// State is the decision state of the rollout's triggers.
func (w *Watch) State() *decide.SystemState { return w.state }

// Ends is when the watch ends: Duration after the rollout completed (zero
// while the previous revision serves).
func (w *Watch) Ends() time.Time {
	if w.Completed.IsZero() {
		return time.Time{}
	}
	return w.Completed.Add(w.tmpl.Watch.Duration)
}

// Done reports whether the watch has ended at `at`.
func (w *Watch) Done(at time.Time) bool {
	e := w.Ends()
	return !e.IsZero() && at.After(e)
}

// Evaluate runs one evaluation cycle at `at`: the phase, the observations
// of that phase, the shared-incident check of every trigger that holds,
// and the state machines. policyHash goes into decisions.
func (w *Watch) Evaluate(ctx context.Context, src rewind.Source, at time.Time, policyHash string) Cycle {
	return w.Apply(w.Observe(ctx, src, at), policyHash)
}

// Observed is what one evaluation read, before the state machines see it.
type Observed struct {
	At           time.Time
	Phase        Phase
	Observations []rewind.Observation
	Shared       []SharedIncident
}

// Observe reads one evaluation: the phase and the observations of every
// trigger, with the shared-incident check. It changes nothing that Apply,
// Ends, Done or State read, so that a caller may show the watch while it
// runs (Apply under the caller's lock).
func (w *Watch) Observe(ctx context.Context, src rewind.Source, at time.Time) Observed {
	o := Observed{At: at, Phase: w.Phase}
	if o.Phase == PhaseCompare && !w.previousServes(ctx, src, at) {
		o.Phase = PhaseHistory
	}
	if o.Phase == PhaseCompare {
		o.Observations = observe.Cycle(ctx, src, w.System, at, w.opt.Concurrency)
		for i := range o.Observations {
			o.Observations[i].Reason = strings.TrimSpace("new vs previous revision: " + o.Observations[i].Reason)
		}
	} else {
		o.Observations = w.history.observe(ctx, src, at, w.opt.Concurrency)
	}
	o.Shared = w.shared(ctx, src, at, o.Observations)
	return o
}

// Apply advances the phase and the state machines by one observed evaluation.
func (w *Watch) Apply(o Observed, policyHash string) Cycle {
	if w.Phase == PhaseCompare && o.Phase == PhaseHistory {
		w.Phase, w.Completed = PhaseHistory, o.At
	}
	return Cycle{Cycle: w.state.Apply(o.At, o.Observations, policyHash), Phase: w.Phase, Shared: o.Shared, Observations: o.Observations}
}

// previousServes reports whether the previous revision still has requests
// in the traffic window. A failed query keeps the phase: the compare
// observations then say degraded.
func (w *Watch) previousServes(ctx context.Context, src rewind.Source, at time.Time) bool {
	vec, err := src.Query(ctx, w.serving, at)
	if err != nil {
		return true
	}
	for _, s := range vec {
		if s.V > 0 {
			return true
		}
	}
	return false
}
