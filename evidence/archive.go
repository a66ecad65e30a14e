// Package evidence keeps a rollback's evidence bundle beyond the pod that
// wrote it: Archive copies the bundle from its local directory into a
// rewind.EvidenceStore (evidence/s3) as the last part of the evidence step.
package evidence

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// FactBundle is the fact under which a step reports the bundle's location
// (plan.FactBundle: the runner copies it to Rollback.Evidence).
const FactBundle = "bundle"

// FactArchiveError is the fact that holds why the bundle was not archived.
const FactArchiveError = "archiveError"

// Defaults of Archive's zero fields.
const (
	DefaultAttempts       = 5
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 8 * time.Second
	DefaultAttemptTimeout = 20 * time.Second
	// deadlineMargin is left of the step's deadline for recording the
	// outcome: Archive gives up before the step would time out.
	deadlineMargin = 2 * time.Second
)

// Archive stores Dir/<rollback id> (written by the platform's evidence
// executor and report.Bundle) in Store and reports its location as the
// bundle. When the store stays unreachable through every attempt it does
// not fail the step — a rollback never fails for its paperwork — but
// escalates it: the journal, the Rollback's status and an error log line
// say that the evidence is only on this pod, and OnFailure is called (a
// metric).
type Archive struct {
	Store rewind.EvidenceStore // required
	Dir   string               // parent of the local bundles
	// Attempts, Backoff, MaxBackoff, AttemptTimeout: the retries (defaults
	// above); the backoff doubles after each failure. Archive stops early
	// rather than outlive its context's deadline.
	Attempts       int
	Backoff        time.Duration
	MaxBackoff     time.Duration
	AttemptTimeout time.Duration
	Log            *slog.Logger
	// OnResult is called once per Do with "archived" or "failed".
	OnResult func(result string)
}

var _ rewind.Executor = (*Archive)(nil)

// Plan says where the bundle will go.
func (a *Archive) Plan(_ context.Context, rb *rewind.Rollback) ([]rewind.Change, error) {
	return []rewind.Change{{Target: "evidence store", Action: "write once",
		Detail: fmt.Sprintf("copy the evidence bundle %s to durable storage", filepath.Join(a.Dir, rb.ID))}}, nil
}

// Do archives the bundle, retrying; see Archive.
func (a *Archive) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	local := filepath.Join(a.Dir, rb.ID)
	wait := or(a.Backoff, DefaultBackoff)
	attempts := a.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	var (
		err  error
		made int
	)
	for made < attempts {
		made++
		actx, cancel := a.attemptContext(ctx)
		var loc string
		loc, err = a.Store.Put(actx, rb.ID, local)
		cancel()
		if err == nil {
			a.result("archived")
			return rewind.StepResult{Detail: "evidence bundle archived to " + loc,
				Facts: map[string]string{FactBundle: loc}}, nil
		}
		if ctx.Err() != nil && !deadlineSoon(ctx, 0) {
			return rewind.StepResult{}, ctx.Err() // shutdown: the step is resumed
		}
		a.log().Warn("archiving the evidence bundle failed", "rollback", rb.ID, "attempt", made, "of", attempts, "error", err)
		if made == attempts || deadlineSoon(ctx, wait) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if !deadlineSoon(ctx, 0) {
				return rewind.StepResult{}, ctx.Err()
			}
		case <-t.C:
		}
		wait = min(2*wait, or(a.MaxBackoff, DefaultMaxBackoff))
	}
	a.result("failed")
	a.log().Error("EVIDENCE NOT ARCHIVED: the bundle is only on this pod and is lost with it", "rollback", rb.ID, "system", rb.System,
		"local", local, "attempts", made, "error", err)
	return rewind.StepResult{
		Escalate: true,
		Detail:   fmt.Sprintf("evidence NOT archived after %d attempts (%v): the bundle is only in %s on this pod", made, err, local),
		Facts:    map[string]string{FactBundle: local, FactArchiveError: err.Error()},
	}, nil
}

// attemptContext bounds one attempt by AttemptTimeout and by the step's
// deadline less the margin.
func (a *Archive) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := or(a.AttemptTimeout, DefaultAttemptTimeout)
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-deadlineMargin)
	}
	return context.WithTimeout(ctx, max(d, time.Millisecond))
}

// deadlineSoon reports whether ctx's deadline comes within wait plus the
// margin (true too when it has passed).
func deadlineSoon(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < wait+deadlineMargin
}

func (a *Archive) result(r string) {
	if a.OnResult != nil {
		a.OnResult(r)
	}
}

func (a *Archive) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Local is the local directory of rollback id's bundle.
func (a *Archive) Local(id string) string { return filepath.Join(a.Dir, id) }

// Sync archives what was added to rollback id's local bundle since it was
// archived (the post-mortem draft, written when the rollback ends); files
// already stored are left as they are. One attempt, bounded by
// AttemptTimeout: the caller logs a failure.
func (a *Archive) Sync(ctx context.Context, id string) (location string, err error) {
	actx, cancel := a.attemptContext(ctx)
	defer cancel()
	return a.Store.Put(actx, id, a.Local(id))
}
