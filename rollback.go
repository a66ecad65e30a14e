package rewind

import (
	"context"
	"errors"
	"time"
)

// StepName names a step of the rollback plan (docs/rollback.md), in plan order.
type StepName string

const (
	// StepSuspendGitOps suspends the GitOps reconciler (Flux, Argo CD) that
	// would otherwise re-apply the bad version from Git; it runs before any
	// other step changes the cluster, and its failure stops the plan.
	StepSuspendGitOps StepName = "suspend-gitops"
	StepDrain         StepName = "drain"
	StepCheckBaseline StepName = "check-baseline"
	StepUndo          StepName = "undo"
	StepScaleDown     StepName = "scale-down"
	StepEvidence      StepName = "evidence"
	StepVerify        StepName = "verify"
	// StepGitRevert proposes the revert in Git (a branch and a pull
	// request on the owner's source repository). Last, so that its failure
	// never keeps the verification from running.
	StepGitRevert StepName = "git-revert"
)

// PlanSteps is the rollback plan, in order.
var PlanSteps = []StepName{StepSuspendGitOps, StepDrain, StepCheckBaseline, StepUndo, StepScaleDown, StepEvidence, StepVerify, StepGitRevert}

// StepState is where a step is in the journal.
type StepState string

const (
	StepPending   StepState = "pending"
	StepRunning   StepState = "running" // journaled before the step's side effects
	StepDone      StepState = "done"
	StepSkipped   StepState = "skipped" // nothing to do (already in the wanted state, or not configured)
	StepFailed    StepState = "failed"
	StepEscalated StepState = "escalated" // done, but what it found needs people (unhealthy baseline, failed verification)
)

// RollbackState is where a whole rollback is.
type RollbackState string

const (
	RollbackRunning   RollbackState = "running"
	RollbackSucceeded RollbackState = "succeeded" // every step done or skipped, verification passed
	RollbackFailed    RollbackState = "failed"    // a step failed, or verification failed: escalated
)

// Rollback is the durable record of one rollback.
type Rollback struct {
	ID        string        `json:"id"`
	System    string        `json:"system"`
	Reason    string        `json:"reason"`             // a trigger list, or the operator's reason
	Requester string        `json:"requester"`          // "rewind" for automatic rollbacks, else who asked
	Decision  *Decision     `json:"decision,omitempty"` // nil for a manual rollback
	State     RollbackState `json:"state"`
	Error     string        `json:"error,omitempty"`
	Steps     []StepRecord  `json:"steps"`
	Started   time.Time     `json:"started"`
	Ended     time.Time     `json:"ended,omitzero"`
	Evidence  string        `json:"evidence,omitempty"` // evidence bundle directory
}

// Step returns the record of the named step, or nil.
func (r *Rollback) Step(name StepName) *StepRecord {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// StepRecord is one step's journal entry.
type StepRecord struct {
	Name     StepName          `json:"name"`
	State    StepState         `json:"state"`
	Attempts int               `json:"attempts"`
	Started  time.Time         `json:"started,omitzero"`
	Ended    time.Time         `json:"ended,omitzero"`
	Detail   string            `json:"detail,omitempty"`
	Error    string            `json:"error,omitempty"`
	Facts    map[string]string `json:"facts,omitempty"` // e.g. drain time, revision undone to
}

// Duration is how long the step took (zero while it runs).
func (s StepRecord) Duration() time.Duration {
	if s.Ended.IsZero() || s.Started.IsZero() {
		return 0
	}
	return s.Ended.Sub(s.Started)
}

// Change is one API change an executor would make, as printed by --dry-run.
type Change struct {
	Target string `json:"target"` // e.g. "VirtualService dwcp/dwcp-service"
	Action string `json:"action"` // e.g. "update", "patch scale"
	Detail string `json:"detail"` // the exact change
}

// StepResult is what an executor did: Skipped when nothing needed doing,
// Escalate when the step completed but found something people must see.
type StepResult struct {
	Skipped  bool
	Escalate bool
	Detail   string
	Facts    map[string]string
}

// Executor implements one plan step on one platform (Istio drain,
// Kubernetes undo, exec, webhook, the demo's router). Do is idempotent:
// calling it again after it succeeded changes nothing. Plan changes nothing
// at all: it lists the exact changes Do would make now (--dry-run).
type Executor interface {
	Plan(ctx context.Context, rb *Rollback) ([]Change, error)
	Do(ctx context.Context, rb *Rollback) (StepResult, error)
}

// Fence makes a rollback exactly-once per system across processes: Acquire
// writes the rollback's id to the target under optimistic concurrency.
type Fence interface {
	// Acquire marks the target with id. If another rollback's id is active
	// there it returns ErrRollbackInProgress with that id, changing nothing.
	// Acquiring the id already held is a no-op (resume).
	Acquire(ctx context.Context, system, id string) (holder string, err error)
	// Complete marks the rollback finished; the fence is free again. It is a
	// no-op when id no longer holds the fence (a resumed rollback calls it again).
	Complete(ctx context.Context, system, id string) error
}

// ErrRollbackInProgress: another rollback of the same system holds the fence.
var ErrRollbackInProgress = errors.New("a rollback of this system is already in progress")
