package notify_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/notifytest"
	"github.com/rewind-sre/rewind/policy"
)

// replay feeds StepEvents the step changes a runner reports, in order.
func replay(rb *rewind.Rollback, states map[rewind.StepName]rewind.StepState) []rewind.EventKind {
	for i := range rb.Steps {
		rb.Steps[i].State = rewind.StepPending
	}
	var out []rewind.EventKind
	for i := range rb.Steps {
		s := &rb.Steps[i]
		s.State = rewind.StepRunning
		out = append(out, notify.StepEvents(rb, *s)...)
		s.State = states[s.Name]
		if s.State == "" {
			s.State = rewind.StepDone
		}
		out = append(out, notify.StepEvents(rb, *s)...)
	}
	return out
}

func TestStepEvents(t *testing.T) {
	for name, tc := range map[string]struct {
		requester string
		states    map[rewind.StepName]rewind.StepState
		want      []rewind.EventKind
	}{
		"verified": {"rewind", nil, []rewind.EventKind{rewind.EventRollbackDecided, rewind.EventRollbackDecided, rewind.EventRollbackCompleted}},
		"manual":   {"alice", nil, []rewind.EventKind{rewind.EventManualRollbackRequested, rewind.EventManualRollbackRequested, rewind.EventRollbackCompleted}},
		"baseline unhealthy": {"rewind", map[rewind.StepName]rewind.StepState{rewind.StepCheckBaseline: rewind.StepEscalated},
			[]rewind.EventKind{rewind.EventRollbackDecided, rewind.EventRollbackDecided, rewind.EventBaselineUnhealthy, rewind.EventRollbackCompleted}},
		"verification failed": {"rewind", map[rewind.StepName]rewind.StepState{rewind.StepVerify: rewind.StepEscalated},
			[]rewind.EventKind{rewind.EventRollbackDecided, rewind.EventRollbackDecided, rewind.EventRollbackFailed}},
		"undo failed": {"rewind", map[rewind.StepName]rewind.StepState{rewind.StepUndo: rewind.StepFailed, rewind.StepScaleDown: rewind.StepSkipped, rewind.StepVerify: rewind.StepSkipped},
			[]rewind.EventKind{rewind.EventRollbackDecided, rewind.EventRollbackDecided, rewind.EventRollbackFailed}},
	} {
		rb := notifytest.Rollback()
		rb.Requester = tc.requester
		if got := replay(rb, tc.states); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

func TestEventOf(t *testing.T) {
	rb := notifytest.Rollback()
	e := notify.EventOf(rewind.EventRollbackDecided, rb, notifytest.Thresholds, notifytest.T0)
	if e.Severity != rewind.SeverityCritical || e.System != "checkout" || e.RollbackID != rb.ID || len(e.Findings) != 2 ||
		e.Findings[0].Threshold != notifytest.Thresholds["error-rate-high"] || e.Links.Evidence != rb.Evidence {
		t.Errorf("decided: %+v", e)
	}
	// The snapshot does not change with the rollback.
	rb.Steps[0].Detail = "changed later"
	if e.Rollback.Steps[0].Detail == "changed later" {
		t.Error("the event shares the rollback's steps")
	}

	// Without the policy's thresholds, a judged trigger's comes from its judgement.
	if f := notify.EventOf(rewind.EventRollbackDecided, rb, nil, notifytest.T0).Findings; f[0].Threshold != "effect ≥ 1.5×, proportion test at α = 0.01" {
		t.Errorf("threshold from the judgement: %q", f[0].Threshold)
	}

	rb = notifytest.Rollback()
	rb.Decision.Triggers[0].Severity = "warning"
	if got := notify.EventOf(rewind.EventRollbackDecided, rb, nil, notifytest.T0).Severity; got != rewind.SeverityWarning {
		t.Errorf("decided on warnings only: %s", got)
	}

	rb = notifytest.Rollback()
	rb.State, rb.Error = rewind.RollbackFailed, "step undo failed: timed out after 2m0s"
	if e := notify.EventOf(rewind.EventRollbackFailed, rb, nil, notifytest.T0); e.Reason != rb.Error || e.Severity != rewind.SeverityCritical {
		t.Errorf("failed: %+v", e)
	}
	rb.Steps[1].State, rb.Steps[1].Detail = rewind.StepEscalated, "baseline error rate 4%"
	if e := notify.EventOf(rewind.EventBaselineUnhealthy, rb, nil, notifytest.T0); e.Reason != "baseline error rate 4%" || e.Severity != rewind.SeverityCritical {
		t.Errorf("baseline: %+v", e)
	}
	if e := notify.EventOf(rewind.EventRollbackCompleted, rb, nil, notifytest.T0); e.Severity != rewind.SeverityInfo {
		t.Errorf("completed: %s", e.Severity)
	}
	if e := notify.EventOf(rewind.EventManualRollbackRequested, rb, nil, notifytest.T0); e.Severity != rewind.SeverityError {
		t.Errorf("manual: %s", e.Severity)
	}
	b := rewind.Event{Kind: rewind.EventAnalyzerBlind, Severity: notify.SeverityOf(rewind.EventAnalyzerBlind, nil), System: "search", At: notifytest.T0}
	if b.Severity != rewind.SeverityWarning || b.Key() != "analyzer-blind/search/2026-01-01T14:20:00Z" {
		t.Errorf("blind: %+v %s", b, b.Key())
	}
}

func TestPolicyRouter(t *testing.T) {
	p := &policy.Policy{Systems: []*policy.System{{Name: "a", Notify: []string{"x", "y", "x"}}, {Name: "b"}}}
	r := notify.PolicyRouter(p)
	for sys, want := range map[string][]string{"a": {"x", "y"}, "b": nil, "unknown": nil} {
		if got := r.Route(rewind.Event{System: sys}); !slices.Equal(got, want) {
			t.Errorf("%s → %v, want %v", sys, got, want)
		}
	}
}

func TestCounters(t *testing.T) {
	var c notify.Counters
	c.Observe("a", notify.ResultRetried)
	c.Observe("a", notify.ResultRetried)
	c.Observe("a", notify.ResultDelivered)
	c.Observe("b", notify.ResultExpired)
	want := []notify.Count{{"a", notify.ResultDelivered, 1}, {"a", notify.ResultRetried, 2}, {"b", notify.ResultExpired, 1}}
	if got := c.Snapshot(); !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// Publish never fails a rollback: a broken store is logged, counted as
// dropped, and returns at once.
func TestPublishWithBrokenStore(t *testing.T) {
	st := openStore(t, t.TempDir()+"/rewind.db")
	st.Close()
	counts := &notify.Counters{}
	logs, log := notifytest.NewLogs()
	o := &notify.Outbox{Store: st, Notifiers: map[string]rewind.Notifier{"x": nil}, Log: log, OnResult: counts.Observe, EnqueueTimeout: time.Second}
	start := time.Now()
	if err := o.Publish(t.Context(), notifytest.Event(rewind.EventRollbackDecided)); err == nil {
		t.Fatal("Publish on a closed store succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Publish took %s", took)
	}
	if counts.Get("x", notify.ResultDropped) != 1 || !strings.Contains(logs.String(), "notification dropped") {
		t.Errorf("counters %+v, log %q", counts.Snapshot(), logs.String())
	}
}
