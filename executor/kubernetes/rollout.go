package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// rolloutStatus applies `kubectl rollout status` rules to a Deployment
// (DeploymentStatusViewer in k8s.io/kubectl/pkg/polymorphichelpers): done
// when the controller has observed the latest generation and every replica
// is updated and available, and no old replica is left. A Progressing
// condition with reason ProgressDeadlineExceeded is a failure — unless it
// was last updated before notBefore (second precision): that one is left
// from the bad rollout being undone, and the controller replaces it as soon
// as the undo makes progress. A new timeout can only come a whole
// progressDeadlineSeconds after the undo.
func rolloutStatus(d *appsv1.Deployment, notBefore time.Time) (msg string, done bool, err error) {
	if d.Generation > d.Status.ObservedGeneration {
		return "waiting for the deployment controller to observe the update", false, nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == timedOutReason &&
			!c.LastUpdateTime.Time.Before(notBefore.Truncate(time.Second)) {
			return "", false, fmt.Errorf("Deployment %s/%s exceeded its progress deadline: %s", d.Namespace, d.Name, c.Message)
		}
	}
	st := d.Status
	if d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("%d of %d new replicas updated", st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	}
	if st.Replicas > st.UpdatedReplicas {
		return fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas), false, nil
	}
	if st.AvailableReplicas < st.UpdatedReplicas {
		return fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return "successfully rolled out", true, nil
}

// waitRollout watches the Deployment until rolloutStatus says done or
// failed, or ctx ends: a Get for the current state, then a watch from its
// resourceVersion; a watch that ends or fails (API server restart, expired
// resourceVersion) is re-established from a fresh Get after a short
// backoff. Forbidden and other errors no retry cures end the wait at once. Every call is bounded by ctx, so an API server that stays away
// ends the wait at ctx's deadline, not later.
func (t *Target) waitRollout(ctx context.Context, notBefore time.Time) (*appsv1.Deployment, error) {
	deployments := t.client.AppsV1().Deployments(t.namespace)
	byName := fields.OneTermEqualSelector("metadata.name", t.name).String()
	last := "no status read yet"
	fail := func(err error) error {
		return fmt.Errorf("waiting for the rollout of %s (%s): %w", t.ref(), last, err)
	}
	retry := time.Duration(0)
	for {
		if retry > 0 {
			timer := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, fail(ctx.Err())
			case <-timer.C:
			}
		}
		retry = min(max(2*retry, 50*time.Millisecond), 2*time.Second)

		d, err := deployments.Get(ctx, t.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, fail(errors.New("the Deployment was deleted"))
		case ctx.Err() != nil:
			return nil, fail(ctx.Err())
		case permanent(err):
			return nil, fail(err)
		case err != nil:
			last = err.Error()
			continue
		}
		msg, done, err := rolloutStatus(d, notBefore)
		if last = msg; done || err != nil {
			return d, err
		}
		w, err := deployments.Watch(ctx, metav1.ListOptions{FieldSelector: byName, ResourceVersion: d.ResourceVersion})
		if err != nil {
			if ctx.Err() != nil {
				return nil, fail(ctx.Err())
			}
			if permanent(err) {
				return nil, fail(err)
			}
			last = err.Error()
			continue
		}
		d, done, err = t.watchRollout(ctx, w, notBefore, &last)
		w.Stop()
		if done || err != nil {
			return d, err
		}
		if ctx.Err() != nil {
			return nil, fail(ctx.Err())
		}
	}
}

// watchRollout reads w until the rollout is done or failed, ctx ends, or
// the watch ends (done false, err nil: re-establish it).
func (t *Target) watchRollout(ctx context.Context, w watch.Interface, notBefore time.Time, last *string) (*appsv1.Deployment, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, false, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, false, fmt.Errorf("waiting for the rollout of %s: the Deployment was deleted", t.ref())
			case watch.Error:
				*last = apierrors.FromObject(ev.Object).Error()
				return nil, false, nil
			}
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				continue
			}
			msg, done, err := rolloutStatus(d, notBefore)
			*last = msg
			if done || err != nil {
				return d, done, err
			}
		}
	}
}

// permanent tells errors that no retry of the same request cures.
func permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) || apierrors.IsMethodNotSupported(err)
}
