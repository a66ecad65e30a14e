package plan_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
)

func TestHappyPath(t *testing.T) {
	fs := newFakes()
	fs[rewind.StepEvidence].result.Facts = map[string]string{plan.FactBundle: "/var/lib/rewind/evidence/rb-1"}
	r, st, fence := newRunner(t, fs)
	var progress progressLog
	r.Progress = progress.record
	d := &rewind.Decision{System: "checkout", Firing: []string{"error-rate"}}

	rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", d)
	if err != nil {
		t.Fatal(err)
	}
	if rb.State != rewind.RollbackSucceeded || rb.Error != "" || rb.Ended.IsZero() {
		t.Fatalf("rollback %s: state %s, error %q, ended %v", rb.ID, rb.State, rb.Error, rb.Ended)
	}
	if !regexp.MustCompile(`^rb-20260101T003131Z-[0-9a-f]{8}$`).MatchString(rb.ID) {
		t.Errorf("id %q is not a sortable rollback id", rb.ID)
	}
	if rb.Evidence != "/var/lib/rewind/evidence/rb-1" {
		t.Errorf("Evidence = %q, want the evidence step's bundle", rb.Evidence)
	}

	var wantProgress, wantJournal []string
	wantJournal = append(wantJournal, "*:running")
	for _, n := range rewind.PlanSteps {
		if got := fs.dos(n); got != 1 {
			t.Errorf("%s: Do called %d times", n, got)
		}
		s := rb.Step(n)
		if s.State != rewind.StepDone || s.Attempts != 1 || s.Duration() <= 0 || s.Facts["step"] != string(n) && n != rewind.StepEvidence {
			t.Errorf("step %+v", *s)
		}
		wantProgress = append(wantProgress, string(n)+":running", string(n)+":done")
		wantJournal = append(wantJournal, string(n)+":running", string(n)+":done")
	}
	wantJournal = append(wantJournal, "*:succeeded")
	if got := progress.calls(); !slices.Equal(got, wantProgress) {
		t.Errorf("Progress calls\n got %v\nwant %v", got, wantProgress)
	}

	entries, lines := journal(t, st, rb.ID)
	if !slices.Equal(lines, wantJournal) {
		t.Fatalf("journal\n got %v\nwant %v", lines, wantJournal)
	}
	for _, e := range entries {
		if e.Step == "" || e.State == "running" {
			continue
		}
		s := rb.Step(e.Step)
		if e.Duration != s.Duration() || !reflect.DeepEqual(e.Facts, s.Facts) || e.Detail != s.Detail || e.Attempt != 1 {
			t.Errorf("journal entry %+v does not match step %+v", e, *s)
		}
	}

	stored, err := st.Get(t.Context(), rb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != rb.State || !reflect.DeepEqual(stored.Steps, rb.Steps) || stored.Decision == nil {
		t.Errorf("stored record differs:\n got %+v\nwant %+v", stored, rb)
	}
	if fence.acquires != 1 || fence.completes != 1 || fence.holder("checkout") != "" {
		t.Errorf("fence: %d acquires, %d completes, holder %q", fence.acquires, fence.completes, fence.holder("checkout"))
	}
	if left, err := st.Unfinished(t.Context()); err != nil || len(left) != 0 {
		t.Errorf("Unfinished after the end: %v, %v", left, err)
	}
}

func TestFailureAtEachStep(t *testing.T) {
	for i, failing := range rewind.PlanSteps {
		t.Run(string(failing), func(t *testing.T) {
			fs := newFakes()
			fs[failing].err = errBoom
			r, st, fence := newRunner(t, fs)
			rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
			if err != nil {
				t.Fatal(err)
			}
			if rb.State != rewind.RollbackFailed {
				t.Fatalf("state %s, want failed", rb.State)
			}
			if want := fmt.Sprintf("step %s failed: boom", failing); !strings.Contains(rb.Error, want) {
				t.Errorf("error %q does not say %q", rb.Error, want)
			}
			if s := rb.Step(failing); s.State != rewind.StepFailed || s.Error != "boom" {
				t.Errorf("failed step recorded as %+v", *s)
			}
			for j, n := range rewind.PlanSteps {
				want := 0
				if j <= i || n == rewind.StepEvidence {
					want = 1 // the steps up to the failure, and evidence always
				}
				if got := fs.dos(n); got != want {
					t.Errorf("%s: Do called %d times, want %d", n, got, want)
				}
				if s := rb.Step(n); want == 0 && (s.State != rewind.StepSkipped || !strings.HasPrefix(s.Detail, "not run")) {
					t.Errorf("%s after the failure recorded as %+v", n, *s)
				}
			}
			if fence.holder("checkout") != "" {
				t.Error("a failed rollback kept the fence")
			}
			if _, lines := journal(t, st, rb.ID); lines[len(lines)-1] != "*:failed" {
				t.Errorf("journal ends with %v", lines[len(lines)-1])
			}
		})
	}
}

func TestEscalation(t *testing.T) {
	for _, c := range []struct {
		step      rewind.StepName
		want      rewind.RollbackState
		wantError string
	}{
		{rewind.StepCheckBaseline, rewind.RollbackSucceeded, ""},
		{rewind.StepVerify, rewind.RollbackFailed, "verification failed: baseline success 0.95 < 0.99"},
	} {
		t.Run(string(c.step), func(t *testing.T) {
			fs := newFakes()
			fs[c.step].result = rewind.StepResult{Escalate: true, Detail: "baseline success 0.95 < 0.99"}
			r, _, _ := newRunner(t, fs)
			rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
			if err != nil {
				t.Fatal(err)
			}
			if rb.State != c.want || rb.Error != c.wantError {
				t.Errorf("state %s error %q, want %s %q", rb.State, rb.Error, c.want, c.wantError)
			}
			if s := rb.Step(c.step); s.State != rewind.StepEscalated {
				t.Errorf("step recorded as %+v", *s)
			}
			for _, n := range rewind.PlanSteps {
				if got := fs.dos(n); got != 1 {
					t.Errorf("%s: Do called %d times: an escalation does not stop the plan", n, got)
				}
			}
		})
	}
}

func TestUnconfiguredStepIsSkipped(t *testing.T) {
	fs := newFakes()
	r, st, _ := newRunner(t, fs)
	delete(r.Executors, rewind.StepScaleDown)
	rb, err := r.Start(t.Context(), "checkout", "manual", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := rb.Step(rewind.StepScaleDown); s.State != rewind.StepSkipped || s.Detail != "not configured" {
		t.Errorf("scale-down recorded as %+v", *s)
	}
	if rb.State != rewind.RollbackSucceeded {
		t.Errorf("state %s", rb.State)
	}
	if _, lines := journal(t, st, rb.ID); !slices.Contains(lines, "scale-down:skipped") || slices.Contains(lines, "scale-down:running") {
		t.Errorf("journal %v", lines)
	}
}

func TestPanickingExecutorFailsItsStep(t *testing.T) {
	fs := newFakes()
	fs[rewind.StepUndo].panicMsg = "nil map"
	r, _, _ := newRunner(t, fs)
	rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rb.State != rewind.RollbackFailed || !strings.Contains(rb.Error, "step undo failed: executor panicked: nil map") {
		t.Errorf("state %s error %q", rb.State, rb.Error)
	}
	if fs.dos(rewind.StepEvidence) != 1 {
		t.Error("evidence not kept after the panic")
	}
}

func TestFenceHeldByAnotherRollback(t *testing.T) {
	fs := newFakes()
	r, st, fence := newRunner(t, fs)
	fence.holders = map[string]string{"checkout": "rb-elsewhere"}

	rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	var ipe *plan.InProgressError
	if !errors.Is(err, rewind.ErrRollbackInProgress) || !errors.As(err, &ipe) || ipe.Holder != "rb-elsewhere" {
		t.Fatalf("Start: %v, want ErrRollbackInProgress naming rb-elsewhere", err)
	}
	if rb == nil || rb.State != rewind.RollbackFailed || rb.Error != "rollback rb-elsewhere already in progress" {
		t.Fatalf("rollback recorded as %+v", rb)
	}
	for _, n := range rewind.PlanSteps {
		if fs.dos(n) != 0 || rb.Step(n).State != rewind.StepPending {
			t.Errorf("%s ran or was recorded (%s) though the fence was held", n, rb.Step(n).State)
		}
	}
	if fence.holder("checkout") != "rb-elsewhere" {
		t.Error("the other rollback's fence was changed")
	}
	stored, err := st.Get(t.Context(), rb.ID)
	if err != nil || stored.State != rewind.RollbackFailed {
		t.Fatalf("stored: %+v, %v", stored, err)
	}

	fence.Complete(t.Context(), "checkout", "rb-elsewhere")
	if rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil); err != nil || rb.State != rewind.RollbackSucceeded {
		t.Fatalf("Start once the fence is free: %v, %v", rb, err)
	}
}

// failingComplete is a memFence whose Complete fails until fixed.
type failingComplete struct {
	memFence
	broken bool
}

func (f *failingComplete) Complete(ctx context.Context, system, id string) error {
	if f.broken {
		return errors.New("connection refused")
	}
	return f.memFence.Complete(ctx, system, id)
}

// A rollback whose fence cannot be released stays unfinished, so that
// Resume releases it later without running a step again.
func TestFenceNotReleasedIsRetriedByResume(t *testing.T) {
	fs := newFakes()
	r, st, _ := newRunner(t, fs)
	fence := &failingComplete{broken: true}
	r.Fence = fence

	rb, err := r.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err == nil || !strings.Contains(err.Error(), "completing the fence of checkout: connection refused") {
		t.Fatalf("Start: %v", err)
	}
	if stored, _ := st.Get(t.Context(), rb.ID); stored.State != rewind.RollbackRunning {
		t.Fatalf("stored as %s, want running until the fence is released", stored.State)
	}
	fence.broken = false
	resumed, err := r.Resume(t.Context())
	if err != nil || len(resumed) != 1 || resumed[0].State != rewind.RollbackSucceeded {
		t.Fatalf("Resume: %v, %v", resumed, err)
	}
	if fence.holder("checkout") != "" || fence.acquires != 1 {
		t.Errorf("fence holder %q after %d acquires", fence.holder("checkout"), fence.acquires)
	}
	for _, n := range rewind.PlanSteps {
		if fs.dos(n) != 1 {
			t.Errorf("%s ran %d times", n, fs.dos(n))
		}
	}
}
