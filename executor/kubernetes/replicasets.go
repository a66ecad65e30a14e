package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// replicaSets lists the ReplicaSets the Deployment controls, oldest first
// (as k8s.io/kubectl/pkg/util/deployment lists them: by the Deployment's
// selector, filtered by controller reference).
func (t *Target) replicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("%s: selector: %w", t.ref(), err)
	}
	list, err := t.client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of %s: %w", t.ref(), err)
	}
	var owned []*appsv1.ReplicaSet
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], d) {
			owned = append(owned, &list.Items[i])
		}
	}
	sort.SliceStable(owned, func(i, j int) bool {
		a, b := owned[i].CreationTimestamp, owned[j].CreationTimestamp
		if a.Equal(&b) {
			return owned[i].Name < owned[j].Name
		}
		return a.Before(&b)
	})
	return owned, nil
}

// currentReplicaSet is the oldest ReplicaSet whose template is the
// Deployment's (the controller's "new" ReplicaSet), or nil.
func currentReplicaSet(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	for _, rs := range rss {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// lastTwoRevisions returns the ReplicaSets of the highest and second
// highest revision, as kubectl picks them for `rollout undo` without
// --to-revision. ReplicaSets without a valid revision are ignored.
func lastTwoRevisions(rss []*appsv1.ReplicaSet) (latest, previous *appsv1.ReplicaSet) {
	latestRev, previousRev := int64(-1), int64(-1)
	for _, rs := range rss {
		v, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case v > latestRev:
			previous, previousRev = latest, latestRev
			latest, latestRev = rs, v
		case v > previousRev:
			previous, previousRev = rs, v
		}
	}
	return latest, previous
}

func byHash(rss []*appsv1.ReplicaSet, hash string) *appsv1.ReplicaSet {
	if hash == "" {
		return nil
	}
	for _, rs := range rss {
		if rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == hash {
			return rs
		}
	}
	return nil
}

func revision(rs *appsv1.ReplicaSet) int64 {
	v, _ := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
	return v
}

// equalIgnoreHash compares two pod templates ignoring the pod-template-hash
// label, as the deployment controller and kubectl do.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// templateImages lists containers as name=image, comma-separated.
func templateImages(cs []corev1.Container) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Image
	}
	return strings.Join(parts, ",")
}
