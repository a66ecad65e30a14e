// Package rollout finds the rollouts of the Deployments that rollout-watch
// systems watch. Discover is a pure function of kube-state-metrics series —
// the same live and in backtests —, Find runs its queries against a metrics
// source, and package rollout/kubernetes learns of rollouts from the API
// server. A rollout is a new ReplicaSet of a Deployment: its
// pod-template-hash is the new revision, the ReplicaSet created before it
// the previous one.
package rollout

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Rollout is one new revision of a watched Deployment.
type Rollout struct {
	// System is the watch system that judges it (for a matchLabels watch,
	// SYSTEM.DEPLOYMENT).
	System     string `json:"system"`
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	ReplicaSet string `json:"replicaSet,omitempty"`
	// Revision is the new ReplicaSet's pod-template-hash.
	Revision string `json:"revision"`
	// Previous is the pod-template-hash of the ReplicaSet created before it:
	// the revision that served when the rollout started ("" for none known).
	Previous string `json:"previous,omitempty"`
	// Start is the creation of the new ReplicaSet (kube_replicaset_created);
	// with Missing set, the first time its revision was seen on the
	// service's series, or zero.
	Start time.Time `json:"start"`
	// Missing says what discovery lacked to judge this rollout: it is
	// reported as insufficient data and never rolled back.
	Missing string `json:"missing,omitempty"`
}

// Key identifies a rollout: system and revision.
func (r Rollout) Key() string { return r.System + "@" + r.Revision }

// Inventory is what Discover reads, as the queries of Find return it.
type Inventory struct {
	// Owners: kube_replicaset_owner{owner_kind="Deployment"} series, one per
	// ReplicaSet (labels replicaset, owner_name).
	Owners rewind.Vector
	// Created: kube_replicaset_created series (labels replicaset; value:
	// creation time, unix seconds).
	Created rewind.Vector
	// Revisions: per revision label value, the times at which the service's
	// series carried it (a count by (revisionLabel) range query). Optional:
	// it reveals revisions that kube-state-metrics does not know.
	Revisions rewind.Matrix
	// Numbers: per ReplicaSet, the Deployment's revision number
	// (deployment.kubernetes.io/revision), when known (the API server).
	// It orders ReplicaSets created within the same second, which creation
	// times (whole seconds) cannot.
	Numbers map[string]int64
}

// Discover lists the rollouts of deployment (namespace ns, watched by
// system, told apart on the service's series by revisionLabel) that started
// in [from, to], by start. A ReplicaSet whose creation time is missing, and
// a revision seen on the service's series that kube-state-metrics does not
// know, are listed with Missing set: they cannot be judged.
func Discover(system, ns, deployment, revisionLabel string, inv Inventory, from, to time.Time) []Rollout {
	type replicaSet struct {
		name, hash string
		created    time.Time
	}
	prefix := deployment + "-"
	owned := map[string]*replicaSet{}
	for _, s := range inv.Owners {
		name := s.Labels["replicaset"]
		if s.Labels["owner_name"] != deployment || name == "" || ns != "" && s.Labels["namespace"] != "" && s.Labels["namespace"] != ns {
			continue
		}
		owned[name] = &replicaSet{name: name, hash: strings.TrimPrefix(name, prefix)}
	}
	for _, s := range inv.Created {
		rs := owned[s.Labels["replicaset"]]
		if rs == nil || math.IsNaN(s.V) || math.IsInf(s.V, 0) || s.V <= 0 || s.V > 1<<40 {
			continue
		}
		sec, frac := math.Modf(s.V)
		rs.created = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	var known []*replicaSet
	var out []Rollout
	base := Rollout{System: system, Namespace: ns, Deployment: deployment}
	firstSeen, seenAtFrom := revisionsSeen(inv.Revisions, revisionLabel, from)
	byHash := map[string]bool{}
	for _, rs := range owned {
		byHash[rs.hash] = true
		if !strings.HasPrefix(rs.name, prefix) || rs.hash == "" {
			r := base
			r.ReplicaSet, r.Revision, r.Start = rs.name, rs.name, rs.created
			r.Missing = fmt.Sprintf("ReplicaSet %s is not named %s<pod-template-hash>: its revision is unknown", rs.name, prefix)
			if in(r.Start, from, to) {
				out = append(out, r)
			}
			continue
		}
		if rs.created.IsZero() {
			r := base
			r.ReplicaSet, r.Revision, r.Start = rs.name, rs.hash, firstSeen[rs.hash]
			r.Missing = fmt.Sprintf("kube_replicaset_created has no sample of ReplicaSet %s: the rollout's start is unknown", rs.name)
			if !seenAtFrom[rs.hash] && (r.Start.IsZero() || in(r.Start, from, to)) {
				out = append(out, r)
			}
			continue
		}
		known = append(known, rs)
	}
	sort.Slice(known, func(i, j int) bool {
		a, b := known[i], known[j]
		if !a.created.Equal(b.created) {
			return a.created.Before(b.created)
		}
		if na, nb := inv.Numbers[a.name], inv.Numbers[b.name]; na != nb {
			return na < nb
		}
		return a.name < b.name
	})
	order := map[string]int{}
	for i, rs := range known {
		order[rs.name] = i
		if i == 0 || !in(rs.created, from, to) {
			continue // the first ReplicaSet is a creation, not a rollout
		}
		r := base
		r.ReplicaSet, r.Revision, r.Previous, r.Start = rs.name, rs.hash, known[i-1].hash, rs.created
		out = append(out, r)
	}
	for hash, t := range firstSeen {
		if byHash[hash] || seenAtFrom[hash] || !in(t, from, to) {
			continue
		}
		r := base
		r.Revision, r.Start = hash, t
		r.Missing = fmt.Sprintf("revision %s=%q is on the service's series but kube-state-metrics has no ReplicaSet %s%s (kube_replicaset_owner missing): the rollout's start and previous revision are unknown", revisionLabel, hash, prefix, hash)
		out = append(out, r)
	}
	// By start; within one second the judged rollouts first, in the order
	// of their ReplicaSets, the others by revision.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case !a.Start.Equal(b.Start):
			return a.Start.Before(b.Start)
		case (a.Missing == "") != (b.Missing == ""):
			return a.Missing == ""
		case a.Missing == "":
			return order[a.ReplicaSet] < order[b.ReplicaSet]
		}
		return a.Revision < b.Revision
	})
	return out
}

func in(t, from, to time.Time) bool { return !t.Before(from) && !t.After(to) }

// revisionsSeen returns, per revision value, the first time it was seen,
// and which revisions were already there at the first sample at or after from.
func revisionsSeen(m rewind.Matrix, label string, from time.Time) (first map[string]time.Time, atFrom map[string]bool) {
	first, atFrom = map[string]time.Time{}, map[string]bool{}
	earliest := time.Time{}
	for _, s := range m {
		for _, p := range s.Points {
			if !p.T.Before(from) && (earliest.IsZero() || p.T.Before(earliest)) {
				earliest = p.T
			}
		}
	}
	for _, s := range m {
		hash := s.Labels[label]
		if hash == "" {
			continue
		}
		for _, p := range s.Points {
			if p.V <= 0 || math.IsNaN(p.V) {
				continue
			}
			if t, ok := first[hash]; !ok || p.T.Before(t) {
				first[hash] = p.T
			}
			if p.T.Before(from) || p.T.Equal(earliest) {
				atFrom[hash] = true
			}
		}
	}
	return first, atFrom
}
