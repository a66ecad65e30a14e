package watch

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/rollout"
)

// Discoverer lists the rollouts of a watch system that started by `at`
// (kube-state-metrics through Prometheus, or the API server).
type Discoverer interface {
	Rollouts(ctx context.Context, at time.Time) ([]rollout.Rollout, error)
}

// KubeStateMetrics discovers rollouts from kube-state-metrics through the
// system's metrics source, over the Lookback before each evaluation.
type KubeStateMetrics struct {
	Source   rewind.Source
	System   *policy.System
	Lookback time.Duration
}

func (k KubeStateMetrics) Rollouts(ctx context.Context, at time.Time) ([]rollout.Rollout, error) {
	return rollout.Find(ctx, k.Source, k.System, at.Add(-k.Lookback), at)
}

// Lookback is how far back a live watch system looks for the rollout it
// judges: its watch duration, and two hours for the rollout itself.
func Lookback(sys *policy.System) time.Duration { return sys.Watch.Duration + 2*time.Hour }

// Registry records the rollouts every live watch system has seen, so that a
// peer that was deployed itself is not taken for a witness of a shared
// incident. It is bounded: only starts within the last MaxAge are kept.
type Registry struct {
	mu     sync.Mutex
	starts map[string][]time.Time
}

// registryMaxAge bounds what a Registry keeps.
const registryMaxAge = 10 * 24 * time.Hour

// Record notes that system had a rollout that started at start.
func (r *Registry) Record(system string, start, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.starts == nil {
		r.starts = map[string][]time.Time{}
	}
	kept := r.starts[system][:0]
	for _, s := range r.starts[system] {
		if now.Sub(s) < registryMaxAge && !s.Equal(start) {
			kept = append(kept, s)
		}
	}
	r.starts[system] = append(kept, start)
}

// Deployed reports whether system had a rollout that started in [from, to].
func (r *Registry) Deployed(system string, from, to time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.starts[system] {
		if !s.Before(from) && !s.After(to) {
			return true
		}
	}
	return false
}

// Live judges the rollouts of one watch system as they happen: at every
// evaluation it discovers them, starts a Watch when a new revision appears
// (ending the watch of the one before), evaluates the current watch until
// it ends, and is idle in between. Only systems that watch one Deployment
// by name run live.
type Live struct {
	System   *policy.System
	Source   rewind.Source
	Discover Discoverer
	Peers    []Peer
	Registry *Registry

	mu      sync.Mutex
	current *Watch
	ended   string               // why the current watch no longer evaluates ("" while it does)
	judged  map[string]time.Time // rollouts whose watch ended, by key: their start
	missing *rollout.Rollout     // the newest rollout, when it cannot be judged
	idle    *decide.SystemState
	started int
}

// NewLive prepares the live watch of sys, reading its metrics from src.
// discover nil: kube-state-metrics through src.
func NewLive(pol *policy.Policy, sys *policy.System, src rewind.Source, discover Discoverer, reg *Registry) (*Live, error) {
	w := sys.Watch
	if w == nil {
		return nil, fmt.Errorf("system %s is not a watch system", sys.Name)
	}
	if w.Deployment == "" {
		return nil, fmt.Errorf("system %s: a live watch needs one Deployment by name (watch.deployment); deployments.matchLabels is for backtest and analyze", sys.Name)
	}
	if discover == nil {
		discover = KubeStateMetrics{Source: src, System: sys, Lookback: Lookback(sys)}
	}
	if reg == nil {
		reg = &Registry{}
	}
	peers := Peers(pol, sys, func(s *policy.System) []string {
		if s.Watch.Deployment == "" {
			return nil
		}
		return []string{s.Watch.Deployment}
	})
	return &Live{System: sys, Source: src, Discover: discover, Peers: peers, Registry: reg,
		judged: map[string]time.Time{}, idle: decide.NewSystemState(sys)}, nil
}

// Close stops the discovery's watch, when it keeps one (the API server's).
func (l *Live) Close() error {
	if c, ok := l.Discover.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// LiveCycle is one evaluation of a live watch system.
type LiveCycle struct {
	Cycle
	// Rollout is the rollout judged (nil while idle); Started says that its
	// watch began at this evaluation.
	Rollout *rollout.Rollout
	Started bool
}

// Status is what a live watch shows: its rollout, phase and times.
type Status struct {
	Rollout   *rollout.Rollout `json:"rollout,omitempty"`
	Phase     Phase            `json:"phase,omitempty"`
	Completed time.Time        `json:"completed,omitzero"`
	Ends      time.Time        `json:"ends,omitzero"`
	// Ended says why the rollout is no longer evaluated: "rolled back",
	// "watched", "superseded".
	Ended string `json:"ended,omitempty"`
	// NotJudged is the newest rollout when it cannot be judged, and why.
	NotJudged *rollout.Rollout `json:"notJudged,omitempty"`
	// Watches counts the watches started since the process started.
	Watches int `json:"watches"`
}

// State is the decision state shown for the system: the current watch's,
// or an idle one.
func (l *Live) State() *decide.SystemState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current != nil && l.ended == "" {
		return l.current.State()
	}
	return l.idle
}

// Status reports the current rollout.
func (l *Live) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{NotJudged: l.missing, Ended: l.ended, Watches: l.started}
	if w := l.current; w != nil {
		r := w.Rollout
		st.Rollout, st.Phase, st.Completed, st.Ends = &r, w.Phase, w.Completed, w.Ends()
	}
	return st
}

// Evaluate runs one evaluation at `at`: Observe, then Apply.
func (l *Live) Evaluate(ctx context.Context, at time.Time, policyHash string) LiveCycle {
	return l.Apply(l.Observe(ctx, at), policyHash)
}

// Pending is one live evaluation read, not yet applied.
type Pending struct {
	at       time.Time
	watch    *Watch // nil: idle
	observed Observed
	outcome  rewind.Outcome // idle
	reason   string         // idle
}

// Observe reads one evaluation at `at`: discovery, then the current
// watch's observations. When discovery fails and no watch runs, every
// trigger is degraded (three such cycles make the system blind); when the
// newest rollout cannot be judged, every trigger has insufficient data.
// Neither rolls back. Observe does the I/O; Apply, under the caller's lock,
// changes what State and Status show.
func (l *Live) Observe(ctx context.Context, at time.Time) Pending {
	rs, err := l.Discover.Rollouts(ctx, at)
	l.mu.Lock()
	if err == nil {
		l.update(rs, at)
	}
	w := l.current
	if w != nil && l.ended == "" && w.Done(at) {
		l.ended = "watched"
		l.judged[w.Rollout.Key()] = w.Rollout.Start
	}
	idle := w == nil || l.ended != ""
	missing := ""
	if l.missing != nil {
		missing = l.missing.Missing
	}
	l.mu.Unlock()
	if !idle {
		return Pending{at: at, watch: w, observed: w.Observe(ctx, l.Source, at)}
	}
	p := Pending{at: at, outcome: rewind.OutcomeFalse,
		reason: "no rollout of " + l.System.Watch.Namespace + "/" + l.System.Watch.Deployment + " is being watched"}
	switch {
	case err != nil:
		p.outcome, p.reason = rewind.OutcomeError, "rollout discovery failed: "+err.Error()
	case missing != "":
		p.outcome, p.reason = rewind.OutcomeNoData, "the newest rollout cannot be judged: "+missing
	}
	return p
}

// Apply advances the current watch (or the idle state) by one evaluation.
func (l *Live) Apply(p Pending, policyHash string) LiveCycle {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.watch == nil {
		return l.idleCycle(p.at, policyHash, p.outcome, p.reason)
	}
	cyc := p.watch.Apply(p.observed, policyHash)
	r := p.watch.Rollout
	lc := LiveCycle{Cycle: cyc, Rollout: &r, Started: p.watch.State().Evaluations == 1}
	if cyc.Decision != nil && l.current == p.watch && l.ended == "" {
		l.ended = "rolled back"
		l.judged[r.Key()] = r.Start
	}
	return lc
}

// update starts the watch of the newest rollout when it is new. Called with l.mu held.
func (l *Live) update(rs []rollout.Rollout, at time.Time) {
	var newest *rollout.Rollout
	for i := range rs {
		r := &rs[i]
		if r.Deployment != l.System.Watch.Deployment || r.Start.After(at) {
			continue
		}
		if r.Missing == "" {
			l.Registry.Record(r.System, r.Start, at)
		}
		if newest == nil || !r.Start.Before(newest.Start) {
			newest = r
		}
	}
	switch {
	case newest == nil:
		return
	case newest.Missing != "":
		if l.current != nil && newest.Start.After(l.current.Rollout.Start) && l.ended == "" {
			l.ended = "superseded"
		}
		m := *newest
		l.missing = &m
		return
	}
	l.missing = nil
	for k, start := range l.judged { // bounded: what discovery can still find
		if at.Sub(start) > Lookback(l.System) {
			delete(l.judged, k)
		}
	}
	if _, done := l.judged[newest.Key()]; done || l.current != nil && l.current.Rollout.Key() == newest.Key() {
		return
	}
	w, err := New(l.System, *newest, Options{Peers: l.Peers, Deployed: l.Registry.Deployed})
	if err != nil {
		m := *newest
		m.Missing = err.Error()
		l.missing = &m
		return
	}
	if l.current != nil && l.ended == "" {
		l.judged[l.current.Rollout.Key()] = l.current.Rollout.Start
	}
	l.current, l.ended = w, ""
	l.started++
}

// idleCycle applies one outcome to every trigger of the idle state. Called
// with l.mu held.
func (l *Live) idleCycle(at time.Time, policyHash string, outcome rewind.Outcome, reason string) LiveCycle {
	obs := make([]rewind.Observation, len(l.System.Triggers))
	for i, t := range l.System.Triggers {
		o := outcome
		if o == rewind.OutcomeNoData && t.OnNoData == policy.NoDataFire {
			o = rewind.OutcomeFalse // nothing is missing from a revision that is not judged
		}
		obs[i] = rewind.Observation{Trigger: t.Name, At: at, Outcome: o, Reason: reason}
	}
	cyc := l.idle.Apply(at, obs, policyHash)
	cyc.Decision, cyc.Firing = nil, nil // an idle system never decides
	return LiveCycle{Cycle: Cycle{Cycle: cyc, Observations: obs}}
}
