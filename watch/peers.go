package watch

import (
	"context"
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

// shared checks every trigger that holds against the peers that were not
// deployed since the window before the rollout: a trigger that holds for a
// peer too, against the peer's own history, is a shared incident. Its
// observation becomes insufficient data (false for an onNoData: fire
// trigger), so that it neither rolls back nor keeps a hold running.
func (w *Watch) shared(ctx context.Context, src rewind.Source, at time.Time, obs []rewind.Observation) []SharedIncident {
	var holding []int
	for i, o := range obs {
		if o.Outcome == rewind.OutcomeTrue && w.peerComparable(w.System.Triggers[i]) {
			holding = append(holding, i)
		}
	}
	if len(holding) == 0 || len(w.peers) == 0 {
		return nil
	}
	since := w.Rollout.Start.Add(-w.tmpl.Watch.History.Window)
	peerObs := make([][]rewind.Observation, len(w.peers))
	for k, p := range w.peers {
		if p.System != "" && w.opt.Deployed != nil && w.opt.Deployed(p.System, since, at) {
			continue
		}
		peerObs[k] = p.hist.observe(ctx, src, at, w.opt.Concurrency)
	}
	var out []SharedIncident
	for _, i := range holding {
		var names []string
		for k, p := range w.peers {
			if peerObs[k] != nil && peerObs[k][i].Outcome == rewind.OutcomeTrue {
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
