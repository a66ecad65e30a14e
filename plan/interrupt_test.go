package plan_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/plan/plantest"
)

func TestStepTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	fs := newFakes()
	fs[rewind.StepUndo].blocks = true
	r, _, _ := newRunner(t, fs)
	r.Now = nil // real time: the timeout is measured
	r.Timeouts = map[rewind.StepName]time.Duration{rewind.StepUndo: timeout}

	start := time.Now()
	rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed < timeout || elapsed > timeout+plantest.Slack {
		t.Errorf("the rollback took %v with a %v undo timeout", elapsed, timeout)
	}
	undo := rb.Step(rewind.StepUndo)
	if undo.State != rewind.StepFailed || undo.Error != "timed out after 200ms" {
		t.Errorf("undo recorded as %+v", *undo)
	}
	if rb.State != rewind.RollbackFailed || !strings.Contains(rb.Error, "step undo failed: timed out after 200ms") {
		t.Errorf("state %s error %q", rb.State, rb.Error)
	}
	if fs.dos(rewind.StepEvidence) != 1 || fs.dos(rewind.StepScaleDown) != 0 {
		t.Error("after the timeout evidence must run and scale-down must not")
	}
}

// A shutdown in the middle of a step is not the step's failure: the journal
// keeps saying running, and Resume runs the step again.
func TestShutdownMidStepThenResume(t *testing.T) {
	fs := newFakes()
	entered := make(chan string, 1)
	fs[rewind.StepUndo].entered = entered
	fs[rewind.StepUndo].blocks = true
	r, st, fence := newRunner(t, fs)

	ctx, shutdown := context.WithCancel(t.Context())
	type result struct {
		rb  *rewind.Rollback
		err error
	}
	done := make(chan result, 1)
	go func() {
		rb, err := r.Start(ctx, "checkout", "error-rate", "rewind", nil)
		done <- result{rb, err}
	}()
	<-entered
	shutdown()
	res := <-done
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("Start after shutdown: %v, want context.Canceled", res.err)
	}
	stored, err := st.Get(t.Context(), res.rb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != rewind.RollbackRunning || stored.Error != "" {
		t.Fatalf("after shutdown the rollback is %s (%q), want running", stored.State, stored.Error)
	}
	if s := stored.Step(rewind.StepUndo); s.State != rewind.StepRunning || s.Attempts != 1 {
		t.Fatalf("after shutdown undo is %+v, want running", *s)
	}
	if fence.holder("checkout") != res.rb.ID {
		t.Fatal("shutdown released the fence of an unfinished rollback")
	}

	fs[rewind.StepUndo].blocks = false // not racy: Do has returned
	resumed, err := r.Resume(t.Context())
	if err != nil || len(resumed) != 1 {
		t.Fatalf("Resume: %v, %v", resumed, err)
	}
	rb := resumed[0]
	if rb.ID != res.rb.ID || rb.State != rewind.RollbackSucceeded {
		t.Fatalf("resumed %s is %s (%q)", rb.ID, rb.State, rb.Error)
	}
	if s := rb.Step(rewind.StepUndo); s.State != rewind.StepDone || s.Attempts != 2 {
		t.Errorf("undo after resume: %+v", *s)
	}
	for _, n := range rewind.PlanSteps {
		want := 1
		if n == rewind.StepUndo {
			want = 2
		}
		if got := fs.dos(n); got != want {
			t.Errorf("%s: Do called %d times, want %d", n, got, want)
		}
	}
	_, lines := journal(t, st, rb.ID)
	want := []string{"*:running", "suspend-gitops:running", "suspend-gitops:done", "drain:running", "drain:done",
		"check-baseline:running", "check-baseline:done", "undo:running", "*:running", "undo:running", "undo:done",
		"scale-down:running", "scale-down:done", "evidence:running", "evidence:done", "verify:running", "verify:done",
		"git-revert:running", "git-revert:done", "*:succeeded"}
	if !slices.Equal(lines, want) {
		t.Errorf("journal\n got %v\nwant %v", lines, want)
	}
	if fence.acquires != 2 || fence.holder("checkout") != "" {
		t.Errorf("fence: %d acquires, holder %q", fence.acquires, fence.holder("checkout"))
	}
}

// Resume never runs a rollback twice: one this Runner is running is not
// resumed again.
func TestResumeSkipsRollbackInFlight(t *testing.T) {
	fs := newFakes()
	entered := make(chan string, 1)
	release := make(chan struct{})
	fs[rewind.StepDrain].entered, fs[rewind.StepDrain].release = entered, release
	r, _, _ := newRunner(t, fs)
	done := make(chan error, 1)
	go func() {
		_, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
		done <- err
	}()
	<-entered
	resumed, err := r.Resume(t.Context())
	if err != nil || len(resumed) != 0 {
		t.Errorf("Resume during a Start: %v, %v; want nothing resumed", resumed, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fs.dos(rewind.StepDrain) != 1 {
		t.Errorf("drain ran %d times", fs.dos(rewind.StepDrain))
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	fs := newFakes()
	fs[rewind.StepVerify].planErr = errors.New("no such VirtualService")
	r, st, fence := newRunner(t, fs)
	delete(r.Executors, rewind.StepScaleDown)

	steps, err := r.DryRun(t.Context(), "checkout", "error-rate")
	if err == nil || !strings.Contains(err.Error(), "planning step verify: no such VirtualService") {
		t.Errorf("DryRun error %v, want verify's planning error", err)
	}
	if len(steps) != len(rewind.PlanSteps) {
		t.Fatalf("%d planned steps", len(steps))
	}
	for i, ps := range steps {
		n := rewind.PlanSteps[i]
		if ps.Step != n || ps.Timeout != plan.DefaultTimeouts[n] {
			t.Errorf("planned step %d: %+v", i, ps)
		}
		switch n {
		case rewind.StepScaleDown:
			if ps.Configured || ps.Changes != nil {
				t.Errorf("unconfigured step planned: %+v", ps)
			}
		case rewind.StepVerify:
			if ps.Err == nil {
				t.Errorf("verify: no error")
			}
		default:
			if len(ps.Changes) != 1 || ps.Changes[0].Detail != "for checkout" {
				t.Errorf("%s: changes %+v", n, ps.Changes)
			}
		}
		if f := fs[n]; f != nil {
			if plans, dos := f.calls(); dos != 0 || (plans != 1) != (n == rewind.StepScaleDown) {
				t.Errorf("%s: %d Plan and %d Do calls", n, plans, dos)
			}
		}
	}
	if all, err := st.List(t.Context(), plan.ListOptions{}); err != nil || len(all) != 0 {
		t.Errorf("the store has %d rollbacks after a dry run (%v)", len(all), err)
	}
	if fence.acquires+fence.completes != 0 {
		t.Error("the dry run touched the fence")
	}
}

func TestFakeExecutorPassesSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		f := &fakeExec{name: rewind.StepUndo}
		return f, &rewind.Rollback{ID: "rb-suite", System: "checkout"}, f.state
	})
}
