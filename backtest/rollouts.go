package backtest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/rollout"
	"github.com/rewind-sre/rewind/watch"
)

// SharedIncident is the decision of a rollout whose only degradation was
// shared with peers that were not deployed.
const SharedIncident = "shared-incident"

// RolloutReport is the replay of one rollout of a watch system.
type RolloutReport struct {
	rollout.Rollout
	// Decision is rollback, shared-incident, inconclusive or healthy.
	Decision   string     `json:"decision"`
	RollbackAt *time.Time `json:"rollbackAt,omitempty"`
	Firing     []string   `json:"firing,omitempty"`
	// Phase is the watch's phase at the rollback, else at the last evaluation.
	Phase watch.Phase `json:"phase,omitempty"`
	// Completed is when the previous revision stopped serving; Ends when the
	// watch ends (Completed + the watch's duration).
	Completed *time.Time `json:"completed,omitempty"`
	Ends      *time.Time `json:"ends,omitempty"`
	// Last is the last evaluation; Cut says why the replay stopped before
	// the watch ended: "range" (--to) or "superseded" (a newer rollout).
	Last        *time.Time `json:"last,omitempty"`
	Cut         string     `json:"cut,omitempty"`
	Evaluations int        `json:"evaluations"`
	// Reason says why the rollout is inconclusive when it was not judged.
	Reason      string              `json:"reason,omitempty"`
	Shared      []SharedEpisode     `json:"sharedIncidents,omitempty"`
	Transitions []rewind.Transition `json:"transitions"`
	Final       []TriggerFinal      `json:"final,omitempty"`
	Evidence    *rewind.Decision    `json:"evidence,omitempty"`
}

// SharedEpisode is one trigger's degradation shared with peers over
// consecutive evaluations.
type SharedEpisode struct {
	Trigger     string    `json:"trigger"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Peers       []string  `json:"peers"`
	Evaluations int       `json:"evaluations"`
}

// maxSharedKept bounds the shared-incident episodes kept per rollout.
const maxSharedKept = 100

// addShared merges the cycle's shared incidents into the episodes: one that
// continues the trigger's last episode (the previous evaluation) extends it.
func addShared(eps []SharedEpisode, shared []watch.SharedIncident, step time.Duration) []SharedEpisode {
	for _, s := range shared {
		merged := false
		for i := len(eps) - 1; i >= 0; i-- {
			e := &eps[i]
			if e.Trigger != s.Trigger {
				continue
			}
			if s.At.Sub(e.To) <= step {
				e.To, e.Evaluations, merged = s.At, e.Evaluations+1, true
				for _, p := range s.Peers {
					if !slices.Contains(e.Peers, p) {
						e.Peers = append(e.Peers, p)
					}
				}
			}
			break
		}
		if !merged && len(eps) < maxSharedKept {
			eps = append(eps, SharedEpisode{Trigger: s.Trigger, From: s.At.UTC(), To: s.At.UTC(), Peers: slices.Clone(s.Peers), Evaluations: 1})
		}
	}
	return eps
}

// runRollouts finds every rollout of the watch systems that started in
// [From, To] and replays each one's watch.
func runRollouts(ctx context.Context, src rewind.Source, pol *policy.Policy, systems []*policy.System, opt Options) ([]RolloutReport, error) {
	deployments := map[*policy.System][]string{}
	var all []rollout.Rollout
	for _, sys := range pol.Systems {
		if sys.Watch == nil {
			continue
		}
		// Every watch system's rollouts are read, not only the selected
		// ones': a peer that was deployed is not a witness of a shared incident.
		ds, err := rollout.Deployments(ctx, src, sys.Watch, opt.To, opt.To.Sub(opt.From)+time.Minute)
		if err != nil {
			return nil, fmt.Errorf("system %s: finding its Deployments: %w", sys.Name, err)
		}
		deployments[sys] = ds
		rs, err := rollout.Find(ctx, src, sys, opt.From, opt.To)
		if err != nil {
			return nil, fmt.Errorf("system %s: finding its rollouts: %w", sys.Name, err)
		}
		all = append(all, rs...)
	}
	deployed := func(system string, from, to time.Time) bool {
		for _, r := range all {
			if r.System == system && !r.Start.Before(from) && !r.Start.After(to) {
				return true
			}
		}
		return false
	}
	var out []RolloutReport
	for _, sys := range systems {
		peers := watch.Peers(pol, sys, func(s *policy.System) []string { return deployments[s] })
		for i, r := range all {
			if r.System != sys.Watch.SystemName(sys.Name, r.Deployment) {
				continue
			}
			until, cut := opt.To, "range"
			if next := nextRollout(all, i); next != nil && next.Start.Before(until) {
				until, cut = next.Start, "superseded"
			}
			rep, err := replayRollout(ctx, src, pol, sys, r, until, cut, watch.Options{Peers: peers, Deployed: deployed, Concurrency: 1}, opt)
			if err != nil {
				return nil, err
			}
			out = append(out, *rep)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// nextRollout is the next judged rollout of the same Deployment after all[i].
func nextRollout(all []rollout.Rollout, i int) *rollout.Rollout {
	var next *rollout.Rollout
	for j := range all {
		r := &all[j]
		if j == i || r.System != all[i].System || r.Missing != "" || !r.Start.After(all[i].Start) {
			continue
		}
		if next == nil || r.Start.Before(next.Start) {
			next = r
		}
	}
	return next
}

func replayRollout(ctx context.Context, src rewind.Source, pol *policy.Policy, sys *policy.System, r rollout.Rollout, until time.Time, cut string, wopt watch.Options, opt Options) (*RolloutReport, error) {
	rep := &RolloutReport{Rollout: r, Transitions: []rewind.Transition{}}
	if r.Missing != "" {
		rep.Decision, rep.Reason = Inconclusive, r.Missing
		return rep, nil
	}
	w, err := watch.New(sys, r, wopt)
	if err != nil {
		return nil, err
	}
	step := opt.Step
	if step <= 0 {
		step = sys.Interval
	}
	// The same grid as the systems' replays: From + k·step.
	first := opt.From
	if r.Start.After(first) {
		first = opt.From.Add((r.Start.Sub(opt.From) + step - 1) / step * step)
	}
	cache := newLazyRange(src, first, until, step, opt.Chunk)
	var last watch.Cycle
	inconclusive, ended := false, false
	for at := first; !at.After(until) && !ended; at = at.Add(step) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ended = w.Done(at); ended {
			break
		}
		cache.forget(at)
		last = w.Evaluate(ctx, cache, at, pol.Hash)
		rep.Evaluations++
		rep.Transitions = append(rep.Transitions, last.Transitions...)
		rep.Shared = addShared(rep.Shared, last.Shared, step)
		t := at.UTC()
		rep.Last, rep.Phase, inconclusive = &t, last.Phase, last.Inconclusive
		if last.Decision != nil {
			rep.Decision, rep.RollbackAt, rep.Firing, rep.Evidence = Rollback, &t, last.Firing, last.Decision
			ended = true // the watch ends with the rollback
		}
	}
	if !ended {
		rep.Cut = cut
	}
	if !w.Completed.IsZero() {
		c, e := w.Completed.UTC(), w.Ends().UTC()
		rep.Completed, rep.Ends = &c, &e
	}
	for _, ts := range w.State().Triggers {
		rep.Final = append(rep.Final, TriggerFinal{Trigger: ts.Trigger.Name, State: ts.State, Canary: ts.Last.Canary, Baseline: ts.Last.Baseline, Reason: ts.Last.Reason})
	}
	switch {
	case rep.Decision == Rollback:
	case len(rep.Shared) > 0:
		rep.Decision = SharedIncident
	case rep.Evaluations == 0:
		rep.Decision, rep.Reason = Inconclusive, "no evaluation in the range"
	case inconclusive:
		rep.Decision = Inconclusive
	default:
		rep.Decision = Healthy
	}
	return rep, nil
}
