package kubernetes

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
)

// ScaleDown sets the canary Deployment's replicas to 0 through its scale
// subresource (read, then update on the read resourceVersion, retried on
// conflict) when the policy says scaleToZero. It is skipped when not
// configured or when the Deployment already asks for 0 replicas. It does
// not wait for the pods to terminate: nothing in the plan depends on it,
// and a pod stuck terminating on a lost node must not fail the rollback.
type ScaleDown struct{ t *Target }

var _ rewind.Executor = (*ScaleDown)(nil)

func (s *ScaleDown) Plan(ctx context.Context, _ *rewind.Rollback) ([]rewind.Change, error) {
	if !s.t.scaleToZero {
		return nil, nil
	}
	n, err := s.replicas(ctx)
	if err != nil || n == 0 {
		return nil, err
	}
	return []rewind.Change{{Target: s.t.ref(), Action: "update scale", Detail: fmt.Sprintf("replicas %d → 0", n)}}, nil
}

func (s *ScaleDown) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	t := s.t
	if !t.scaleToZero {
		return rewind.StepResult{Skipped: true, Detail: "scaleToZero is not configured"}, nil
	}
	deployments := t.client.AppsV1().Deployments(t.namespace)
	var from int32
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		sc, err := deployments.GetScale(ctx, t.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if from = sc.Spec.Replicas; from == 0 {
			return nil
		}
		sc.Spec.Replicas = 0
		_, err = deployments.UpdateScale(ctx, t.name, sc, metav1.UpdateOptions{FieldManager: "rewind"})
		return err
	})
	if apierrors.IsNotFound(err) {
		return rewind.StepResult{}, fmt.Errorf("scaling down: %s not found", t.ref())
	}
	if err != nil {
		return rewind.StepResult{}, ctxErr(ctx, "scaling down "+t.ref(), err)
	}
	facts := map[string]string{"fromReplicas": strconv.Itoa(int(from))}
	if from == 0 {
		return rewind.StepResult{Skipped: true, Facts: facts, Detail: t.ref() + " already has 0 replicas"}, nil
	}
	return rewind.StepResult{Facts: facts, Detail: fmt.Sprintf("scaled %s from %d replicas to 0", t.ref(), from)}, nil
}

func (s *ScaleDown) replicas(ctx context.Context) (int32, error) {
	sc, err := s.t.client.AppsV1().Deployments(s.t.namespace).GetScale(ctx, s.t.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("%s not found", s.t.ref())
	}
	if err != nil {
		return 0, fmt.Errorf("reading the scale of %s: %w", s.t.ref(), err)
	}
	return sc.Spec.Replicas, nil
}
