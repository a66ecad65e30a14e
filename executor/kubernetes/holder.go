package kubernetes

import "context"

// Holder reads the fence: the rollback id written on the Deployment, and
// whether it is still active. A new leader uses it to finish a rollback that
// a controller on another machine started and did not complete.
func (f *Fence) Holder(ctx context.Context) (id string, active bool, err error) {
	d, err := f.t.get(ctx)
	if err != nil {
		return "", false, ctxErr(ctx, "reading the fence on "+f.t.ref(), err)
	}
	id = d.Annotations[AnnotationRollback]
	return id, id != "" && d.Annotations[AnnotationRollbackState] == FenceActive, nil
}
