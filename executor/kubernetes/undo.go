package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/util/retry"

	rewind "github.com/rewind-sre/rewind"
)

// Undo is `kubectl rollout undo` on the canary Deployment: the template of
// the previous revision (deployment.kubernetes.io/revision of the
// ReplicaSets it owns) without its pod-template-hash label, the
// Deployment's annotations computed as kubectl computes them, written with
// an update on the read resourceVersion; then a watch on the rollout with
// `kubectl rollout status` rules, bounded by ctx.
//
// Exactly once: the same update writes an UndoRecord (AnnotationUndo) with
// the rollback's id and the pod-template-hash of the revision restored. A
// later run compares the Deployment's template with that recorded target —
// never again with "the previous revision" of the new state, which after an
// undo is the bad revision — and skips when they are equal. A Deployment
// changed since this rollback's own undo is an error, not a second undo.
//
// Before it updates, Undo snapshots the pods of the bad revision (their
// YAML and every container's log tail) into the evidence bundle's pre-undo/
// directory: by the time the evidence step runs, after scale-down, those
// pods are gone. The snapshot is best effort, bounded to a fraction of the
// step's time, and never fails the undo; what it missed is in its index.
type Undo struct{ t *Target }

var _ rewind.Executor = (*Undo)(nil)

// UndoRecord is the JSON in AnnotationUndo.
type UndoRecord struct {
	Rollback        string    `json:"rollback"`
	FromRevision    int64     `json:"fromRevision"`
	FromHash        string    `json:"fromHash"` // pod-template-hash of the undone revision
	FromImages      string    `json:"fromImages"`
	ToRevision      int64     `json:"toRevision"` // the restored revision, as numbered before the undo
	ToHash          string    `json:"toHash"`
	ToImages        string    `json:"toImages"`
	CanaryStartedAt time.Time `json:"canaryStartedAt"` // creation of the undone revision's ReplicaSet
	At              time.Time `json:"at"`
}

// undoAction is what Undo would do now to the Deployment as read.
type undoAction struct {
	read   *appsv1.Deployment
	rec    UndoRecord
	skip   string             // non-empty: nothing to change, and why
	update *appsv1.Deployment // the Deployment to write; nil when skipping
}

func (u *Undo) Plan(ctx context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	a, err := u.resolve(ctx, rb)
	if err != nil || a.skip != "" {
		return nil, err
	}
	return []rewind.Change{{
		Target: u.t.ref(),
		Action: "update",
		Detail: fmt.Sprintf("rollout undo: template revision %d → %d, images %s → %s", a.rec.FromRevision, a.rec.ToRevision, a.rec.FromImages, a.rec.ToImages),
	}}, nil
}

func (u *Undo) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return rewind.StepResult{}, err
	}
	t := u.t
	var (
		act      *undoAction
		snapshot string
		tried    bool
	)
	err := retry.RetryOnConflict(conflictBackoff, func() error {
		a, err := u.resolve(ctx, rb)
		if err != nil {
			return err
		}
		act = a
		if a.skip != "" {
			return nil
		}
		if !tried { // once, before the first write
			tried = true
			snapshot = t.snapshot(ctx, rb, a.read)
		}
		_, err = t.update(ctx, a.update)
		return err
	})
	if err != nil {
		return rewind.StepResult{}, ctxErr(ctx, "rolling back "+t.ref(), err)
	}

	start := t.now()
	d, err := t.waitRollout(ctx, act.rec.At)
	facts := act.rec.facts()
	facts["rolloutSeconds"] = strconv.FormatFloat(t.now().Sub(start).Seconds(), 'f', 3, 64)
	if snapshot != "" {
		facts["preUndoSnapshot"] = snapshot
	}
	if err != nil {
		return rewind.StepResult{Facts: facts}, err
	}
	facts["revision"] = d.Annotations[revisionAnnotation]
	res := rewind.StepResult{Skipped: act.skip != "", Facts: facts}
	if res.Skipped {
		res.Detail = act.skip + "; rollout complete"
	} else {
		res.Detail = fmt.Sprintf("rolled %s back from revision %d (%s) to revision %d (%s), now revision %s; available after %ss",
			t.ref(), act.rec.FromRevision, act.rec.FromImages, act.rec.ToRevision, act.rec.ToImages, facts["revision"], facts["rolloutSeconds"])
	}
	return res, nil
}

// resolve reads the Deployment and its ReplicaSets and decides what Undo
// does now. It changes nothing.
func (u *Undo) resolve(ctx context.Context, rb *rewind.Rollback) (*undoAction, error) {
	t := u.t
	d, err := t.get(ctx)
	if err != nil {
		return nil, err
	}
	if d.Spec.Paused {
		return nil, fmt.Errorf("%s is paused: a paused deployment cannot be rolled back; resume it (kubectl rollout resume) and run the rollback again", t.ref())
	}
	rss, err := t.replicaSets(ctx, d)
	if err != nil {
		return nil, err
	}
	prior, err := readUndoRecord(d)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		if target := byHash(rss, prior.ToHash); target != nil && equalIgnoreHash(&target.Spec.Template, &d.Spec.Template) {
			who := "this rollback"
			if prior.Rollback != rb.ID {
				who = "rollback " + prior.Rollback
			}
			return &undoAction{read: d, rec: *prior, skip: fmt.Sprintf("%s is at the template of revision %d that %s restored (%s)",
				t.ref(), prior.ToRevision, who, prior.ToImages)}, nil
		}
		if prior.Rollback == rb.ID {
			return nil, fmt.Errorf("%s changed after this rollback undid it to revision %d (%s): it now runs %s; not undoing a second time",
				t.ref(), prior.ToRevision, prior.ToImages, images(d))
		}
	}

	latest, previous := lastTwoRevisions(rss)
	if previous == nil {
		return nil, fmt.Errorf("%s has no previous revision to roll back to (%d ReplicaSets)", t.ref(), len(rss))
	}
	bad := currentReplicaSet(d, rss)
	if bad == nil { // the controller has not created it yet
		bad = latest
	}
	rec := UndoRecord{
		Rollback:        rb.ID,
		FromRevision:    revision(bad),
		FromHash:        bad.Labels[appsv1.DefaultDeploymentUniqueLabelKey],
		FromImages:      images(d),
		ToRevision:      revision(previous),
		ToHash:          previous.Labels[appsv1.DefaultDeploymentUniqueLabelKey],
		ToImages:        templateImages(previous.Spec.Template.Spec.Containers),
		CanaryStartedAt: bad.CreationTimestamp.Time,
		At:              t.now().UTC(),
	}
	if equalIgnoreHash(&previous.Spec.Template, &d.Spec.Template) {
		return &undoAction{read: d, rec: rec, skip: fmt.Sprintf("%s is already at the template of its previous revision %d (%s)",
			t.ref(), rec.ToRevision, rec.ToImages)}, nil
	}

	upd := d.DeepCopy()
	upd.Spec.Template = *previous.Spec.Template.DeepCopy()
	delete(upd.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	upd.Annotations = undoAnnotations(d.Annotations, previous.Annotations)
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	upd.Annotations[AnnotationUndo] = string(recJSON)
	return &undoAction{read: d, rec: rec, update: upd}, nil
}

// kubectlKeptAnnotations are the annotations `kubectl rollout undo` keeps
// from the Deployment rather than copying them from the ReplicaSet
// (annotationsToSkip in k8s.io/kubectl/pkg/polymorphichelpers/rollback.go).
var kubectlKeptAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
	revisionAnnotation:          true,
	revisionHistoryAnnotation:   true,
	desiredReplicasAnnotation:   true,
	maxReplicasAnnotation:       true,
	appsv1.DeprecatedRollbackTo: true,
}

// undoAnnotations computes the Deployment's annotations after an undo as
// kubectl does — the kept ones from the Deployment, every other one from
// the ReplicaSet restored — and keeps Rewind's own (AnnotationPrefix) from
// the Deployment: the fence must survive the undo, and the copies the
// deployment controller left on the ReplicaSet are stale.
func undoAnnotations(deployment, rs map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range deployment {
		if kubectlKeptAnnotations[k] || hasRewindPrefix(k) {
			out[k] = v
		}
	}
	for k, v := range rs {
		if !kubectlKeptAnnotations[k] && !hasRewindPrefix(k) {
			out[k] = v
		}
	}
	return out
}

func hasRewindPrefix(k string) bool { return strings.HasPrefix(k, AnnotationPrefix) }

// readUndoRecord parses AnnotationUndo; nil when there is none.
func readUndoRecord(d *appsv1.Deployment) (*UndoRecord, error) {
	raw, ok := d.Annotations[AnnotationUndo]
	if !ok {
		return nil, nil
	}
	var rec UndoRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("Deployment %s/%s: annotation %s is not an undo record: %w", d.Namespace, d.Name, AnnotationUndo, err)
	}
	return &rec, nil
}

func (r UndoRecord) facts() map[string]string {
	f := map[string]string{
		"fromRevision": strconv.FormatInt(r.FromRevision, 10),
		"toRevision":   strconv.FormatInt(r.ToRevision, 10),
		"fromImages":   r.FromImages,
		"toImages":     r.ToImages,
		"undoRollback": r.Rollback,
		"undoneHash":   r.FromHash,
		"restoredHash": r.ToHash,
	}
	if !r.CanaryStartedAt.IsZero() {
		f["canaryStartedAt"] = r.CanaryStartedAt.UTC().Format(time.RFC3339)
	}
	return f
}
