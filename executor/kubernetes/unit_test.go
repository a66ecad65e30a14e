package kubernetes

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRolloutStatus(t *testing.T) {
	undoAt := time.Date(2026, 1, 2, 15, 4, 5, 600_000_000, time.UTC)
	three := int32(3)
	dep := func(gen, observed int64, replicas, updated, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: &three},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated,
				AvailableReplicas: available, Conditions: conds},
		}
	}
	timedOut := func(at time.Time) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Reason: timedOutReason, Message: "too slow",
			LastUpdateTime: metav1.NewTime(at.Truncate(time.Second))}
	}
	for _, tc := range []struct {
		name    string
		d       *appsv1.Deployment
		done    bool
		err     string
		message string
	}{
		{"not observed", dep(2, 1, 3, 3, 3), false, "", "observe"},
		{"updating", dep(2, 2, 3, 1, 1), false, "", "1 of 3 new replicas updated"},
		{"old pending", dep(2, 2, 4, 3, 3), false, "", "1 old replicas pending termination"},
		{"unavailable", dep(2, 2, 3, 3, 2), false, "", "2 of 3 updated replicas available"},
		{"done", dep(2, 2, 3, 3, 3), true, "", "successfully rolled out"},
		{"timed out after the undo", dep(2, 2, 3, 1, 1, timedOut(undoAt.Add(10*time.Minute))), false, "exceeded its progress deadline", ""},
		// In the very second of the undo: still a new timeout.
		{"timed out in the undo's second", dep(2, 2, 3, 1, 1, timedOut(undoAt)), false, "exceeded its progress deadline", ""},
		{"stale timeout of the bad rollout", dep(2, 2, 3, 1, 1, timedOut(undoAt.Add(-time.Minute))), false, "", "1 of 3 new replicas updated"},
		{"timeout not yet observed", dep(2, 1, 3, 1, 1, timedOut(undoAt.Add(time.Hour))), false, "", "observe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, done, err := rolloutStatus(tc.d, undoAt)
			if done != tc.done || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) || !strings.Contains(msg, tc.message) {
				t.Errorf("rolloutStatus = %q, %v, %v; want done %v, error %q, message %q", msg, done, err, tc.done, tc.err, tc.message)
			}
		})
	}
}

func TestUndoAnnotations(t *testing.T) {
	deployment := map[string]string{
		revisionAnnotation:                                 "2",
		desiredReplicasAnnotation:                          "3",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
		"kubernetes.io/change-cause":                       "v2",
		"team":                                             "checkout",
		AnnotationRollback:                                 "rb-1",
		AnnotationRollbackState:                            FenceActive,
	}
	rs := map[string]string{
		revisionAnnotation:           "1",
		maxReplicasAnnotation:        "4",
		"kubernetes.io/change-cause": "v1",
		AnnotationRollback:           "rb-0", // copied by the controller long ago
		AnnotationUndo:               "{}",
	}
	got := undoAnnotations(deployment, rs)
	want := map[string]string{
		revisionAnnotation:                                 "2",
		desiredReplicasAnnotation:                          "3",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
		"kubernetes.io/change-cause":                       "v1",
		AnnotationRollback:                                 "rb-1",
		AnnotationRollbackState:                            FenceActive,
	}
	if len(got) != len(want) {
		t.Errorf("undoAnnotations = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestLastTwoRevisions(t *testing.T) {
	rs := func(name, rev string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{revisionAnnotation: rev}}}
	}
	for _, tc := range []struct {
		in               []*appsv1.ReplicaSet
		latest, previous string
	}{
		{[]*appsv1.ReplicaSet{rs("a", "1"), rs("b", "2")}, "b", "a"},
		{[]*appsv1.ReplicaSet{rs("b", "3"), rs("a", "10"), rs("c", "2")}, "a", "b"},
		{[]*appsv1.ReplicaSet{rs("a", "1"), rs("x", "junk")}, "a", ""},
		{nil, "", ""},
	} {
		l, p := lastTwoRevisions(tc.in)
		name := func(r *appsv1.ReplicaSet) string {
			if r == nil {
				return ""
			}
			return r.Name
		}
		if name(l) != tc.latest || name(p) != tc.previous {
			t.Errorf("lastTwoRevisions = %s, %s; want %s, %s", name(l), name(p), tc.latest, tc.previous)
		}
	}
}
