package rollout

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// revisionsPoints bounds the points per revision of the revisions query.
const revisionsPoints = 1000

// Find discovers, from kube-state-metrics in src, the rollouts of every
// Deployment that the watch system sys watches that started in [from, to].
// Instant queries are evaluated at to over the whole range
// (last_over_time); when src is also a rewind.RangeSource, the revisions on
// the service's series are read too, to report rollouts that
// kube-state-metrics missed. A failed query is an error: the caller reports
// the system degraded, never "no rollouts".
func Find(ctx context.Context, src rewind.Source, sys *policy.System, from, to time.Time) ([]Rollout, error) {
	w := sys.Watch
	if w == nil {
		return nil, fmt.Errorf("system %s is not a watch system", sys.Name)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("rollout discovery: %s is after %s", from, to)
	}
	rng := lookback(to.Sub(from))
	deployments, err := Deployments(ctx, src, w, to, rng)
	if err != nil || len(deployments) == 0 {
		return nil, err
	}
	owners, err := src.Query(ctx, OwnersQuery(w.Namespace, deployments, rng), to)
	if err != nil {
		return nil, err
	}
	created, err := src.Query(ctx, CreatedQuery(w.Namespace, deployments, rng), to)
	if err != nil {
		return nil, err
	}
	var out []Rollout
	for _, d := range deployments {
		inv := Inventory{Owners: owners, Created: created}
		if rs, ok := src.(rewind.RangeSource); ok {
			step := max(5*time.Minute, to.Sub(from)/revisionsPoints).Truncate(time.Second)
			if inv.Revisions, err = rs.QueryRange(ctx, RevisionsQuery(w, d), from, to, step); err != nil {
				return nil, err
			}
		}
		out = append(out, Discover(w.SystemName(sys.Name, d), w.Namespace, d, w.RevisionLabel, inv, from, to)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// Deployments lists the Deployments w watches: its one Deployment, or those
// whose labels match (kube_deployment_labels, as label_KEY) during rng before at.
func Deployments(ctx context.Context, src rewind.Source, w *policy.Watch, at time.Time, rng time.Duration) ([]string, error) {
	if w.Deployment != "" {
		return []string{w.Deployment}, nil
	}
	vec, err := src.Query(ctx, DeploymentsQuery(w, rng), at)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range vec {
		if d := s.Labels["deployment"]; d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// DeploymentsQuery finds the Deployments whose labels match w.MatchLabels.
func DeploymentsQuery(w *policy.Watch, rng time.Duration) string {
	ms := []string{"namespace=" + strconv.Quote(w.Namespace)}
	keys := make([]string, 0, len(w.MatchLabels))
	for k := range w.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ms = append(ms, KSMLabel(k)+"="+strconv.Quote(w.MatchLabels[k]))
	}
	return fmt.Sprintf("max by (deployment) (last_over_time(kube_deployment_labels{%s}[%s]))", strings.Join(ms, ","), model.Duration(rng))
}

// OwnersQuery reads which ReplicaSets the Deployments own.
func OwnersQuery(ns string, deployments []string, rng time.Duration) string {
	return fmt.Sprintf(`max by (namespace, replicaset, owner_name) (last_over_time(kube_replicaset_owner{namespace=%s,owner_kind="Deployment",owner_name=~%s}[%s]))`,
		strconv.Quote(ns), strconv.Quote(alternatives(deployments, "")), model.Duration(rng))
}

// CreatedQuery reads the creation times of the Deployments' ReplicaSets.
func CreatedQuery(ns string, deployments []string, rng time.Duration) string {
	return fmt.Sprintf(`max by (namespace, replicaset) (last_over_time(kube_replicaset_created{namespace=%s,replicaset=~%s}[%s]))`,
		strconv.Quote(ns), strconv.Quote(alternatives(deployments, "-.+")), model.Duration(rng))
}

// RevisionsQuery counts the service's series per revision.
func RevisionsQuery(w *policy.Watch, deployment string) string {
	return fmt.Sprintf(`count by (%s) ({%s,%s!=""})`, w.RevisionLabel, w.ServiceSelector(deployment), w.RevisionLabel)
}

// KSMLabel is the label kube-state-metrics gives a Kubernetes label key:
// label_ and the key with every character other than a letter, digit or _
// replaced by _.
func KSMLabel(key string) string {
	return "label_" + nonLabel.ReplaceAllString(key, "_")
}

var nonLabel = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func alternatives(names []string, suffix string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n) + suffix
	}
	return strings.Join(q, "|")
}

// lookback is d rounded up to whole seconds, at least a minute: the range
// of the last_over_time queries.
func lookback(d time.Duration) time.Duration {
	return max(time.Minute, (d + time.Second - 1).Truncate(time.Second))
}
