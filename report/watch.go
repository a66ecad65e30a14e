package report

import (
	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Undo step facts (executor/kubernetes) that name the revisions of a
// rollback: the one undone and the one restored.
const (
	factUndoneHash   = "undoneHash"
	factRestoredHash = "restoredHash"
)

// rolloutSystem is the system whose queries describe rb: for a rollout-watch
// system, its triggers instantiated for the revision the undo step undid
// (canary) against the one it restored (baseline) — the template's own
// queries name no revision; for a canary system, sys itself. Without the
// undo's facts (the step did not run) the template is returned.
func rolloutSystem(sys *policy.System, rb *rewind.Rollback) *policy.System {
	if sys == nil || sys.Watch == nil || rb == nil {
		return sys
	}
	s := rb.Step(rewind.StepUndo)
	if s == nil || s.Facts[factUndoneHash] == "" || s.Facts[factRestoredHash] == "" {
		return sys
	}
	w := sys.Watch
	dep := w.Deployment
	if dep == "" && sys.Rollback.Kubernetes != nil {
		dep = sys.Rollback.Kubernetes.Deployment
	}
	inst, err := sys.Instantiate(sys.Name, dep, w.RevisionSelector(dep, s.Facts[factUndoneHash]), w.RevisionSelector(dep, s.Facts[factRestoredHash]))
	if err != nil {
		return sys
	}
	return inst
}
