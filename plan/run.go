package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// run takes rb from its recorded state to its end. Everything it decides is
// derived from rb's step records, so a resumed rollback goes on exactly as
// the interrupted one would have: a step left running is run again, and a
// step failed before the interruption still stops the plan.
func (r *Runner) run(ctx context.Context, rb *rewind.Rollback) error {
	if needsRun(rb) {
		if err := r.acquire(ctx, rb); err != nil {
			return err
		}
	}
	for _, name := range rewind.PlanSteps {
		if err := ctx.Err(); err != nil {
			return interrupted(rb, err)
		}
		rec := rb.Step(name)
		if rec == nil { // a record written by an older plan
			rb.Steps = append(rb.Steps, rewind.StepRecord{Name: name, State: rewind.StepPending})
			rec = &rb.Steps[len(rb.Steps)-1]
		}
		if finished(rec.State) {
			continue
		}
		var err error
		if failed := firstFailed(rb); failed != nil && name != rewind.StepEvidence {
			// A failure stops the plan; only evidence is still kept.
			err = r.settle(ctx, rb, rec, rewind.StepSkipped, "not run: step "+string(failed.Name)+" failed")
		} else {
			err = r.step(ctx, rb, rec)
		}
		if err != nil {
			return err
		}
	}
	return r.finish(ctx, rb)
}

// acquire takes the fence for rb. When another rollback holds it, rb is
// recorded failed without running a step.
func (r *Runner) acquire(ctx context.Context, rb *rewind.Rollback) error {
	if r.Fence == nil {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	holder, err := r.Fence.Acquire(fctx, rb.System, rb.ID)
	cancel()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return interrupted(rb, ctx.Err())
	case errors.Is(err, rewind.ErrRollbackInProgress):
		ipe := &InProgressError{System: rb.System, Holder: holder, Where: "fence"}
		return errors.Join(ipe, r.abandon(ctx, rb, fmt.Sprintf("rollback %s already in progress", holder)))
	default:
		err = fmt.Errorf("acquiring the fence of %s: %w", rb.System, err)
		return errors.Join(err, r.abandon(ctx, rb, err.Error()))
	}
}

// abandon records rb failed before any step ran.
func (r *Runner) abandon(ctx context.Context, rb *rewind.Rollback, why string) error {
	rb.State, rb.Error, rb.Ended = rewind.RollbackFailed, why, r.now()
	sctx, cancel := recordCtx(ctx)
	defer cancel()
	return r.Store.Save(sctx, rb, JournalEntry{State: string(rb.State), At: rb.Ended, Error: why})
}

// step runs one executor: journal "running", Do under the step's timeout,
// journal the outcome. A Do cut short by ctx (shutdown) is not an outcome:
// the journal keeps saying running, and Resume runs the step again.
func (r *Runner) step(ctx context.Context, rb *rewind.Rollback, rec *rewind.StepRecord) error {
	ex := r.Executors[rec.Name]
	if ex == nil {
		return r.settle(ctx, rb, rec, rewind.StepSkipped, "not configured")
	}
	timeout := r.timeout(rec.Name)
	rec.State, rec.Attempts = rewind.StepRunning, rec.Attempts+1
	rec.Started, rec.Ended = r.now(), time.Time{}
	rec.Detail, rec.Error, rec.Facts = "", "", nil
	entry := JournalEntry{Step: rec.Name, State: string(rewind.StepRunning), Attempt: rec.Attempts, At: rec.Started}
	if err := r.Store.Save(ctx, rb, entry); err != nil {
		return fmt.Errorf("journaling step %s before it runs: %w", rec.Name, err)
	}
	r.progress(rb, rec)

	sctx, cancel := context.WithTimeout(ctx, timeout)
	res, err := do(sctx, ex, rb)
	timedOut := errors.Is(sctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil && ctx.Err() != nil {
		return interrupted(rb, ctx.Err())
	}

	rec.Ended = r.now()
	rec.Detail, rec.Facts = res.Detail, maps.Clone(res.Facts)
	switch {
	case err != nil && timedOut:
		rec.State, rec.Error = rewind.StepFailed, fmt.Sprintf("timed out after %v", timeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			rec.Error += ": " + err.Error()
		}
	case err != nil:
		rec.State, rec.Error = rewind.StepFailed, err.Error()
	case res.Escalate:
		rec.State = rewind.StepEscalated
	case res.Skipped:
		rec.State = rewind.StepSkipped
	default:
		rec.State = rewind.StepDone
	}
	if rec.Name == rewind.StepEvidence && res.Facts[FactBundle] != "" {
		rb.Evidence = res.Facts[FactBundle]
	}
	if rec.State == rewind.StepFailed {
		_, rb.Error = outcome(rb)
	}
	return r.record(ctx, rb, rec)
}

// do calls ex.Do, turning a panic into the step's failure rather than a
// crash that Resume would repeat.
func do(ctx context.Context, ex rewind.Executor, rb *rewind.Rollback) (res rewind.StepResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = rewind.StepResult{}, fmt.Errorf("executor panicked: %v", p)
		}
	}()
	return ex.Do(ctx, rb)
}

// settle records a step that does not run, in one journal entry.
func (r *Runner) settle(ctx context.Context, rb *rewind.Rollback, rec *rewind.StepRecord, state rewind.StepState, detail string) error {
	now := r.now()
	rec.State, rec.Detail, rec.Started, rec.Ended = state, detail, now, now
	return r.record(ctx, rb, rec)
}

// record journals rec's outcome; it happened, so it is written down even
// while ctx is being cancelled.
func (r *Runner) record(ctx context.Context, rb *rewind.Rollback, rec *rewind.StepRecord) error {
	sctx, cancel := recordCtx(ctx)
	defer cancel()
	entry := JournalEntry{
		Step: rec.Name, State: string(rec.State), Attempt: rec.Attempts, At: rec.Ended,
		Detail: rec.Detail, Error: rec.Error, Facts: rec.Facts, Duration: rec.Duration(),
	}
	if err := r.Store.Save(sctx, rb, entry); err != nil {
		return fmt.Errorf("journaling the outcome of step %s: %w", rec.Name, err)
	}
	r.progress(rb, rec)
	return nil
}

// finish releases the fence and records the rollback's end. If the fence
// cannot be released the rollback stays running, with the reason journaled,
// so that Resume tries again: a finished rollback must not keep the system
// fenced.
func (r *Runner) finish(ctx context.Context, rb *rewind.Rollback) error {
	state, msg := outcome(rb)
	if r.Fence != nil {
		fctx, cancel := context.WithTimeout(ctx, fenceTimeout)
		err := r.Fence.Complete(fctx, rb.System, rb.ID)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(rb, ctx.Err())
			}
			err = fmt.Errorf("completing the fence of %s: %w", rb.System, err)
			sctx, cancel := recordCtx(ctx)
			defer cancel()
			return errors.Join(err, r.Store.Save(sctx, rb, JournalEntry{State: string(rb.State), At: r.now(), Error: err.Error()}))
		}
	}
	rb.State, rb.Error, rb.Ended = state, msg, r.now()
	sctx, cancel := recordCtx(ctx)
	defer cancel()
	entry := JournalEntry{State: string(state), At: rb.Ended, Error: msg, Duration: rb.Ended.Sub(rb.Started)}
	if err := r.Store.Save(sctx, rb, entry); err != nil {
		return fmt.Errorf("recording the end of rollback %s: %w", rb.ID, err)
	}
	return nil
}

// outcome derives the rollback's state from its steps: failed if a step
// failed or the verification escalated, else succeeded.
func outcome(rb *rewind.Rollback) (rewind.RollbackState, string) {
	var why []string
	for _, s := range rb.Steps {
		switch {
		case s.State == rewind.StepFailed:
			why = append(why, fmt.Sprintf("step %s failed: %s", s.Name, s.Error))
		case s.State == rewind.StepEscalated && s.Name == rewind.StepVerify:
			why = append(why, "verification failed: "+s.Detail)
		}
	}
	if len(why) > 0 {
		return rewind.RollbackFailed, strings.Join(why, "; ")
	}
	return rewind.RollbackSucceeded, ""
}

func firstFailed(rb *rewind.Rollback) *rewind.StepRecord {
	for i := range rb.Steps {
		if rb.Steps[i].State == rewind.StepFailed {
			return &rb.Steps[i]
		}
	}
	return nil
}

// needsRun reports whether a step of rb is still to run.
func needsRun(rb *rewind.Rollback) bool {
	for _, name := range rewind.PlanSteps {
		if s := rb.Step(name); s == nil || !finished(s.State) {
			return true
		}
	}
	return false
}

func finished(s rewind.StepState) bool {
	switch s {
	case rewind.StepDone, rewind.StepSkipped, rewind.StepEscalated, rewind.StepFailed:
		return true
	}
	return false
}

func interrupted(rb *rewind.Rollback, err error) error {
	return fmt.Errorf("rollback %s interrupted at %s; Resume continues it: %w", rb.ID, current(rb), err)
}

// current names the step rb is in, for messages.
func current(rb *rewind.Rollback) string {
	for _, s := range rb.Steps {
		if !finished(s.State) {
			return "step " + string(s.Name)
		}
	}
	return "its end"
}
