package plan

import (
	"context"
	"errors"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// DryRunID is the id of the transient rollback that DryRun shows executors.
const DryRunID = "dry-run"

// PlannedStep is one step of a dry run: the exact API changes its executor
// would make now.
type PlannedStep struct {
	Step       rewind.StepName
	Configured bool // false: the step would be skipped "not configured"
	Timeout    time.Duration
	Changes    []rewind.Change // empty: nothing to change
	Err        error           // the executor could not plan (e.g. its target is missing)
}

// DryRun asks each step's executor for the changes it would make to roll
// system back now, in plan order. It writes nothing anywhere: not the store,
// not the fence, not the targets. Each Plan call is bounded by the step's
// timeout. Planning goes on past a step that cannot be planned; the error
// joins every step's failure, and the steps are returned either way.
//
// Each executor plans against the targets as they are now, so a step's
// changes do not include the effect of the steps before it.
func (r *Runner) DryRun(ctx context.Context, system, reason string) ([]PlannedStep, error) {
	if system == "" {
		return nil, errors.New("plan: a rollback needs a system")
	}
	rb := &rewind.Rollback{
		ID:        DryRunID,
		System:    system,
		Reason:    reason,
		Requester: DryRunID,
		State:     rewind.RollbackRunning,
		Started:   r.now(),
	}
	for _, name := range rewind.PlanSteps {
		rb.Steps = append(rb.Steps, rewind.StepRecord{Name: name, State: rewind.StepPending})
	}
	var (
		planned []PlannedStep
		errs    []error
	)
	for _, name := range rewind.PlanSteps {
		ps := PlannedStep{Step: name, Timeout: r.timeout(name)}
		if ex := r.Executors[name]; ex != nil {
			ps.Configured = true
			sctx, cancel := context.WithTimeout(ctx, ps.Timeout)
			ps.Changes, ps.Err = ex.Plan(sctx, rb)
			cancel()
			if ps.Err != nil {
				errs = append(errs, fmt.Errorf("planning step %s: %w", name, ps.Err))
			}
		}
		planned = append(planned, ps)
	}
	return planned, errors.Join(errs...)
}
