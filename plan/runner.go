// Package plan is the durable rollback runner of docs/rollback.md: it runs the
// steps of rewind.PlanSteps through their executors, journals each step in a
// Store before and after it runs, resumes an unfinished rollback after a
// restart, and fences the target so that a system is rolled back at most
// once at a time, across processes.
package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// DefaultTimeouts bound each step when Runner.Timeouts has no entry for it.
// The verify default is the policy's default verify timeout; wiring passes
// the policy's own (rollback.verify.timeout) in Runner.Timeouts.
var DefaultTimeouts = map[rewind.StepName]time.Duration{
	rewind.StepSuspendGitOps: 30 * time.Second,
	rewind.StepDrain:         30 * time.Second,
	rewind.StepCheckBaseline: 30 * time.Second,
	rewind.StepUndo:          2 * time.Minute,
	rewind.StepScaleDown:     1 * time.Minute,
	rewind.StepEvidence:      1 * time.Minute,
	rewind.StepVerify:        2 * time.Minute,
	rewind.StepGitRevert:     2 * time.Minute,
}

// FactBundle is the fact under which the evidence executor reports the
// bundle directory it wrote; the runner copies it to Rollback.Evidence.
const FactBundle = "bundle"

const (
	// fenceTimeout bounds one Acquire or Complete call on the fence.
	fenceTimeout = 30 * time.Second
	// recordTimeout bounds writing down what already happened (a step's
	// outcome, the final state) even while the process shuts down.
	recordTimeout = 30 * time.Second
)

// Runner runs rollback plans. Its fields are configuration, set before the
// first call and not changed after; a Runner is safe for concurrent use and
// must not be copied after first use.
type Runner struct {
	Store Store        // required
	Fence rewind.Fence // the cross-process half of exactly-once; nil: the store's check only
	// Executors per step; a step without one is recorded skipped "not configured".
	Executors map[rewind.StepName]rewind.Executor
	// Timeouts per step; missing entries fall back to DefaultTimeouts.
	Timeouts map[rewind.StepName]time.Duration
	Now      func() time.Time // default time.Now
	// Progress is called synchronously on every change of a step's state,
	// after it is journaled (for the live terminal view and notifications).
	// It must return quickly and must not modify rb. Resume may call it
	// from several goroutines at once, one per rollback.
	Progress func(rb *rewind.Rollback, step rewind.StepRecord)
	NewID    func() string // default NewID(Now())

	mu     sync.Mutex
	active map[string]bool // rollback ids this Runner is running now
}

// NewID returns a new rollback id that sorts by its start time, e.g.
// rb-20260101T003130Z-3f2a91c0.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "rb-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Start records a new rollback of system, fences the target and runs the
// plan to its end. It returns the rollback's final record with a nil error
// whether the rollback succeeded or failed: rb.State and rb.Error say which.
//
// The error is non-nil when the plan could not run to its end:
//   - another rollback of system is in progress (in the store, or holding
//     the fence): errors.Is(err, rewind.ErrRollbackInProgress), and the
//     error is an *InProgressError with the holder's id. When the fence
//     refused, rb is this rollback's record, failed without a step run;
//   - ctx was cancelled (shutdown): rb is left running in the store at the
//     step it was in, for Resume to continue. ctx is the process's
//     lifetime, not a deadline for the rollback: steps are bounded by
//     their Timeouts;
//   - the store failed: the journal holds the last recorded state.
func (r *Runner) Start(ctx context.Context, system, reason, requester string, d *rewind.Decision) (*rewind.Rollback, error) {
	return r.StartWithID(ctx, r.newID(), system, reason, requester, d)
}

// StartWithID is Start with an id chosen by the caller (an API that answers
// with the id before the rollback ends); ids must be unique.
func (r *Runner) StartWithID(ctx context.Context, id, system, reason, requester string, d *rewind.Decision) (*rewind.Rollback, error) {
	if r.Store == nil {
		return nil, errors.New("plan: Runner has no Store")
	}
	if system == "" {
		return nil, errors.New("plan: a rollback needs a system")
	}
	rb := &rewind.Rollback{
		ID:        id,
		System:    system,
		Reason:    reason,
		Requester: requester,
		Decision:  d,
		State:     rewind.RollbackRunning,
		Started:   r.now(),
	}
	for _, name := range rewind.PlanSteps {
		rb.Steps = append(rb.Steps, rewind.StepRecord{Name: name, State: rewind.StepPending})
	}
	// Claimed before it exists in the store, so that a concurrent Resume of
	// this Runner never picks it up as an orphan.
	release, _ := r.claim(rb.ID)
	defer release()
	if err := r.Store.Create(ctx, rb); err != nil {
		return nil, fmt.Errorf("starting a rollback of %s: %w", system, err)
	}
	return rb, r.run(ctx, rb)
}

// Resume continues every unfinished rollback in the store, concurrently
// (each is of a different system), at the step that was running (run again:
// executors are idempotent) or the next pending one. It never starts a new
// rollback, and skips those this Runner is running already. It returns the
// resumed rollbacks in their final state, and the errors of those that could
// not run to their end (as Start's).
//
// Resume is for the one process that owns the store (the leader): two
// processes resuming the same store at once would both run the rollback.
func (r *Runner) Resume(ctx context.Context) ([]*rewind.Rollback, error) {
	return r.ResumeSystem(ctx, "")
}

// ResumeSystem is Resume for the rollbacks of one system ("" : every
// system). A Runner's executors act on one system's targets, so a Runner
// shared by several systems' rollbacks must only resume its own.
func (r *Runner) ResumeSystem(ctx context.Context, system string) ([]*rewind.Rollback, error) {
	if r.Store == nil {
		return nil, errors.New("plan: Runner has no Store")
	}
	unfinished, err := r.Store.Unfinished(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing unfinished rollbacks: %w", err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		resumed []*rewind.Rollback
	)
	for _, rb := range unfinished {
		if system != "" && rb.System != system {
			continue
		}
		release, ok := r.claim(rb.ID)
		if !ok {
			continue
		}
		resumed = append(resumed, rb)
		wg.Go(func() {
			defer release()
			err := r.Store.Save(ctx, rb, JournalEntry{State: string(rewind.RollbackRunning), At: r.now(), Detail: "resumed"})
			if err == nil {
				err = r.run(ctx, rb)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("resuming %s: %w", rb.ID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return resumed, errors.Join(errs...)
}

// claim marks id as run by this Runner; ok is false if it is already.
func (r *Runner) claim(id string) (release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[id] {
		return func() {}, false
	}
	if r.active == nil {
		r.active = map[string]bool{}
	}
	r.active[id] = true
	return func() {
		r.mu.Lock()
		delete(r.active, id)
		r.mu.Unlock()
	}, true
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) newID() string {
	if r.NewID != nil {
		return r.NewID()
	}
	return NewID(r.now())
}

func (r *Runner) timeout(name rewind.StepName) time.Duration {
	if d, ok := r.Timeouts[name]; ok && d > 0 {
		return d
	}
	if d, ok := DefaultTimeouts[name]; ok {
		return d
	}
	return time.Minute
}

func (r *Runner) progress(rb *rewind.Rollback, rec *rewind.StepRecord) {
	if r.Progress != nil {
		r.Progress(rb, *rec)
	}
}

// recordCtx is for writing down what already happened: it outlives a
// cancelled ctx (shutdown), bounded by recordTimeout.
func recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
