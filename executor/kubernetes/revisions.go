package kubernetes

import (
	"cmp"
	"context"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// Revision is one revision of the Deployment: a ReplicaSet it controls.
type Revision struct {
	Number     int64 // the deployment.kubernetes.io/revision annotation; 0 when absent
	ReplicaSet string
	Hash       string // its pod-template-hash
	Image      string // its first container's image
	Created    time.Time
	Replicas   int32
	// Current: its template is the Deployment's.
	Current bool
}

// Revisions lists the Deployment's revisions, newest first (by revision
// number, then creation). It reads what `rollout undo` reads: the
// Deployment and its ReplicaSets.
func (t *Target) Revisions(ctx context.Context) ([]Revision, error) {
	d, err := t.get(ctx)
	if err != nil {
		return nil, err
	}
	rss, err := t.replicaSets(ctx, d)
	if err != nil {
		return nil, err
	}
	cur := currentReplicaSet(d, rss)
	out := make([]Revision, 0, len(rss))
	for _, rs := range rss {
		r := Revision{Number: revision(rs), ReplicaSet: rs.Name, Hash: rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey],
			Created: rs.CreationTimestamp.Time, Replicas: rs.Status.Replicas, Current: rs == cur}
		if cs := rs.Spec.Template.Spec.Containers; len(cs) > 0 {
			r.Image = cs[0].Image
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Revision) int {
		return cmp.Or(cmp.Compare(b.Number, a.Number), b.Created.Compare(a.Created))
	})
	return out, nil
}
