package watch

import (
	"context"
	"math"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// peerSystem is a peer service judged against its own history, over the
// same reference windows as the rollout.
type peerSystem struct {
	Peer
	hist *historySystem
	seen map[int]time.Time // per trigger: the last evaluation that showed it degraded
}

// Peers lists the peers of the watch system sys in pol: the watch systems it
// names (every other one when it names none) and the selectors it lists.
// deployments maps a watch system to the Deployments it watches (one per
// system unless it selects them by labels).
func Peers(pol *policy.Policy, sys *policy.System, deployments func(*policy.System) []string) []Peer {
	w := sys.Watch
	var out []Peer
	for _, o := range pol.Systems {
		if o == sys || o.Watch == nil || !w.Peers.AllWatched && !contains(w.Peers.Systems, o.Name) {
			continue
		}
		for _, d := range deployments(o) {
			name := o.Watch.SystemName(o.Name, d)
			out = append(out, Peer{Name: name, Selector: o.Watch.ServiceSelector(d), System: name})
		}
	}
	for _, sel := range w.Peers.Selectors {
		out = append(out, Peer{Name: sel, Selector: sel})
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// PeerAlpha is the significance at which a peer's judgement counts as the
// same degradation. It is looser than a trigger's own alpha on purpose: the
// peer only has to make the rollout's guilt doubtful, and two services hit
// by one incident cross a strict threshold a cycle or two apart.
const PeerAlpha = 0.05

// PeerMemory is how long a peer seen degraded counts as degraded: the seed's
// 5-minute window, so that a peer that recovers a little sooner does not
// turn the end of a shared incident into a rollback.
const PeerMemory = 5 * time.Minute

// shared checks every trigger that holds (or is worse, unproven) against the peers that were not
// deployed since the window before the rollout: a trigger that holds for a
// peer too, against the peer's own history (at PeerAlpha, within the last
// PeerMemory), is a shared incident. Its observation becomes insufficient
// data (false for an onNoData: fire trigger), so that it neither rolls back
// nor keeps a hold running.
func (w *Watch) shared(ctx context.Context, src rewind.Source, at time.Time, obs []rewind.Observation) []SharedIncident {
	var holding []int
	for i, o := range obs {
		if o.Outcome.Worse() && w.peerComparable(w.System.Triggers[i]) {
			holding = append(holding, i)
		}
	}
	if len(holding) == 0 || len(w.peers) == 0 {
		return nil
	}
	since := w.Rollout.Start.Add(-w.tmpl.Watch.History.Window)
	for _, p := range w.peers {
		if p.System != "" && w.opt.Deployed != nil && w.opt.Deployed(p.System, since, at) {
			continue
		}
		po := p.hist.observe(ctx, src, at, w.opt.Concurrency)
		for _, i := range holding {
			if degraded(po[i], p.hist.triggers[i]) {
				p.seen[i] = at
			}
		}
	}
	var out []SharedIncident
	for _, i := range holding {
		var names []string
		for _, p := range w.peers {
			if last, ok := p.seen[i]; ok && at.Sub(last) < PeerMemory {
				names = append(names, p.Name)
			}
		}
		if len(names) == 0 {
			continue
		}
		out = append(out, SharedIncident{At: at, Trigger: obs[i].Trigger, Peers: names})
		o := &obs[i]
		o.Outcome = rewind.OutcomeNoData
		if w.System.Triggers[i].OnNoData == policy.NoDataFire {
			o.Outcome = rewind.OutcomeFalse
		}
		o.Reason = "shared incident: the same degradation at the same time in " + strings.Join(names, ", ") + ", which were not deployed; not blamed on this rollout (" + o.Reason + ")"
	}
	return out
}

// degraded reports whether a peer's observation shows the trigger's
// degradation: it holds, or its judgement is significant at PeerAlpha with
// the effect the trigger asks for.
func degraded(o rewind.Observation, t *policy.Trigger) bool {
	if o.Outcome == rewind.OutcomeTrue {
		return true
	}
	j := o.Judge
	if o.Outcome != rewind.OutcomeUnproven && o.Outcome != rewind.OutcomeFalse || j == nil || j.PValue > PeerAlpha || t.Judge == nil {
		return false
	}
	effect := math.NaN()
	switch {
	case j.Effect != nil:
		effect = *j.Effect
	case j.Counts["baselineBad"] == 0 && j.Counts["canaryBad"] > 0:
		effect = math.Inf(1) // against a baseline without bad requests
	}
	decrease := t.Judge.Direction == "decrease"
	if a := t.Judge.Above; a != nil {
		return decrease && effect < *a || !decrease && effect > *a
	}
	f := max(j.MinEffect, 1)
	return decrease && effect <= 1/f || !decrease && effect >= f
}

// peerComparable: probes, and alert forms without {{selector}}, read the
// same thing for every service; a peer cannot tell anything apart there.
func (w *Watch) peerComparable(t *policy.Trigger) bool {
	switch t.Form {
	case policy.FormProbe:
		return false
	case policy.FormExpr:
		return strings.Contains(t.Expr, w.System.CanarySelector)
	}
	return true
}
