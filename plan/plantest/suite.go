// Package plantest is the test suite every rewind.Executor passes: the
// contract the plan runner relies on to journal, resume and dry-run steps.
package plantest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Slack is how long after its deadline a Do may still return: it covers
// one round trip to a local target on a loaded CI machine.
var Slack = 2 * time.Second

// StepTimeout bounds each Plan and Do call that is not a deadline case.
var StepTimeout = 2 * time.Minute

// ShortDeadline is the deadline of the "short deadline" case: long enough
// for Do to start, far shorter than any real rollout.
var ShortDeadline = 50 * time.Millisecond

// ExecutorSuite checks the executor contract on fresh targets made by
// newTarget, one per case: ex is the executor under test, rb the rollback it
// is given, and state a canonical description of everything the executor
// may change on its target (e.g. the objects as YAML without their
// resourceVersions), compared with ==.
//
//   - Plan changes nothing, and says the same when asked twice.
//   - Do is idempotent: a second Do succeeds and changes nothing.
//   - Do honours its context: with a deadline already past it returns an
//     error and changes nothing; with a short deadline it returns within
//     the deadline plus Slack.
func ExecutorSuite(t *testing.T, newTarget func(t *testing.T) (ex rewind.Executor, rb *rewind.Rollback, state func() string)) {
	t.Helper()

	t.Run("PlanChangesNothing", func(t *testing.T) {
		ex, rb, state := newTarget(t)
		ctx := stepContext(t)
		before := state()
		first, err := ex.Plan(ctx, rb)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		if after := state(); after != before {
			t.Fatalf("Plan changed the target:\nbefore: %s\nafter:  %s", before, after)
		}
		second, err := ex.Plan(ctx, rb)
		if err != nil {
			t.Fatalf("second Plan: %v", err)
		}
		if !reflect.DeepEqual(first, second) {
			t.Errorf("Plan is not repeatable:\nfirst:  %+v\nsecond: %+v", first, second)
		}
		if after := state(); after != before {
			t.Fatalf("second Plan changed the target:\nbefore: %s\nafter:  %s", before, after)
		}
	})

	t.Run("DoIsIdempotent", func(t *testing.T) {
		ex, rb, state := newTarget(t)
		ctx := stepContext(t)
		if _, err := ex.Do(ctx, rb); err != nil {
			t.Fatalf("first Do: %v", err)
		}
		once := state()
		res, err := ex.Do(ctx, rb)
		if err != nil {
			t.Fatalf("second Do: %v", err)
		}
		if twice := state(); twice != once {
			t.Fatalf("second Do changed the target:\nafter first:  %s\nafter second: %s", once, twice)
		}
		if !res.Skipped {
			t.Logf("second Do changed nothing but did not report Skipped (detail %q)", res.Detail)
		}
	})

	t.Run("DoHonoursExpiredDeadline", func(t *testing.T) {
		ex, rb, state := newTarget(t)
		before := state()
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		start := time.Now()
		_, err := ex.Do(ctx, rb)
		if err == nil {
			t.Fatal("Do with an expired deadline returned no error")
		}
		if d := time.Since(start); d > Slack {
			t.Errorf("Do with an expired deadline took %v", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("the error does not wrap context.DeadlineExceeded: %v", err)
		}
		if after := state(); after != before {
			t.Fatalf("Do with an expired deadline changed the target:\nbefore: %s\nafter:  %s", before, after)
		}
	})

	t.Run("DoHonoursShortDeadline", func(t *testing.T) {
		ex, rb, _ := newTarget(t)
		ctx, cancel := context.WithTimeout(t.Context(), ShortDeadline)
		defer cancel()
		start := time.Now()
		_, err := ex.Do(ctx, rb)
		if d := time.Since(start); d > ShortDeadline+Slack {
			t.Errorf("Do with a %v deadline returned after %v (err %v)", ShortDeadline, d, err)
		}
	})
}

func stepContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), StepTimeout)
	t.Cleanup(cancel)
	return ctx
}
