package gitops

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Resumed is what resuming one owner did.
type Resumed struct {
	Owner Owner `json:"owner"`
	// Restored is the field and the value put back, e.g.
	// `spec.suspend: false`; "" when the owner was not suspended by Rewind.
	Restored string `json:"restored,omitempty"`
	// By is the rollback whose suspension was lifted.
	By string `json:"by,omitempty"`
}

// Resume lifts Rewind's suspension of each owner: the changed field gets
// its recorded previous value back exactly (removed if it was absent), the
// record annotations go, and an ApplicationSet loses the rule Rewind added.
// Each write is an update of the object as read, retried on conflict. An
// owner Rewind did not suspend is left alone (Restored ""), so Resume is
// idempotent.
func Resume(ctx context.Context, f *Finder, owners []Owner) ([]Resumed, error) {
	var out []Resumed
	for _, o := range owners {
		r, err := resumeOne(ctx, f, o)
		if err != nil {
			return out, fmt.Errorf("resuming %s: %w", o, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func resumeOne(ctx context.Context, f *Finder, o Owner) (Resumed, error) {
	out := Resumed{Owner: o}
	r, err := f.res(o.Kind.GVR())
	if err != nil {
		return out, err
	}
	res := r.Namespace(o.Namespace)
	var rec Suspension
	err = retry.OnError(conflictBackoff, retriable, func() error {
		obj, err := res.Get(ctx, o.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ann := obj.GetAnnotations()
		by := ann[AnnotationSuspendedBy]
		if by == "" {
			return nil
		}
		if err := json.Unmarshal([]byte(ann[AnnotationPrevious]), &rec); err != nil {
			return fmt.Errorf("annotation %s is not Rewind's record: %w", AnnotationPrevious, err)
		}
		if rec.IgnoreRule && o.ApplicationSet == "" {
			o.ApplicationSet = rec.Owner.ApplicationSet
		}
		if err := restore(obj, rec.Field, rec.Previous); err != nil {
			return err
		}
		delete(ann, AnnotationSuspendedBy)
		delete(ann, AnnotationPrevious)
		obj.SetAnnotations(ann)
		if _, err := res.Update(ctx, obj, metav1.UpdateOptions{FieldManager: "rewind"}); err != nil {
			return err
		}
		out.By, out.Restored = by, rec.Field+": "+string(rec.Previous)
		return nil
	})
	if err != nil {
		return out, err
	}
	// The rule goes after the sync policy is back: in between, the
	// ApplicationSet controller would put the template's policy back, which
	// is the same.
	if o.ApplicationSet != "" {
		if err := removeIgnoreRule(ctx, f, o); err != nil {
			return out, err
		}
	}
	return out, nil
}

// SuspendedBy is whether an owner is suspended by Rewind now, and by which
// rollback: for `rewind analyze`, the API and the resume command.
func SuspendedBy(ctx context.Context, f *Finder, o Owner) (suspendedBy string, err error) {
	obj, err := f.getObj(ctx, o.Kind.GVR(), o.Namespace, o.Name)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", o, err)
	}
	return obj.GetAnnotations()[AnnotationSuspendedBy], nil
}
