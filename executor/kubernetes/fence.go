package kubernetes

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
)

// Fence makes a rollback of the canary Deployment exactly-once across
// processes: Acquire writes the rollback's id (AnnotationRollback) and
// "active" (AnnotationRollbackState) to the Deployment with an update on
// the resourceVersion it read, so of two processes racing, one update
// fails with a conflict; that one re-reads, finds the other's id active
// and gets rewind.ErrRollbackInProgress. Complete marks the id "done".
//
// A fence left active by a rollback that will never be resumed (its store
// lost) blocks the system until someone removes the annotations.
type Fence struct{ t *Target }

var _ rewind.Fence = (*Fence)(nil)

func (f *Fence) Acquire(ctx context.Context, system, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("fence of %s: no rollback id", f.t.ref())
	}
	t := f.t
	var holder string
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		d, err := t.get(ctx)
		if err != nil {
			return err
		}
		held, state := d.Annotations[AnnotationRollback], d.Annotations[AnnotationRollbackState]
		if state == FenceActive && held != "" {
			holder = held
			if held == id {
				return nil
			}
			return fmt.Errorf("%w: rollback %s of %s holds %s since %s", rewind.ErrRollbackInProgress,
				held, d.Annotations[AnnotationRollbackSystem], t.ref(), d.Annotations[AnnotationRollbackSince])
		}
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[AnnotationRollback] = id
		d.Annotations[AnnotationRollbackState] = FenceActive
		d.Annotations[AnnotationRollbackSystem] = system
		d.Annotations[AnnotationRollbackSince] = t.now().UTC().Format(time.RFC3339)
		if _, err := t.update(ctx, d); err != nil {
			return err
		}
		holder = id
		return nil
	})
	if err != nil {
		return holder, ctxErr(ctx, "acquiring the fence on "+t.ref(), err)
	}
	return holder, nil
}

func (f *Fence) Complete(ctx context.Context, system, id string) error {
	t := f.t
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		d, err := t.get(ctx)
		if err != nil {
			return err
		}
		held, state := d.Annotations[AnnotationRollback], d.Annotations[AnnotationRollbackState]
		switch {
		case held != id && state == FenceActive:
			return fmt.Errorf("rollback %s holds the fence, not %s", held, id)
		case held != id || state == FenceDone:
			return nil // released already; a later rollback may have taken and released it since
		}
		d.Annotations[AnnotationRollbackState] = FenceDone
		d.Annotations[AnnotationRollbackSince] = t.now().UTC().Format(time.RFC3339)
		_, err = t.update(ctx, d)
		return err
	})
	if err != nil {
		return ctxErr(ctx, "completing the fence on "+t.ref(), err)
	}
	return nil
}
