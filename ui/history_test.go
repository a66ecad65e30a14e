package ui

import (
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

func tr(at time.Duration, to rewind.TriggerState) rewind.Transition {
	return rewind.Transition{At: t0.Add(at), Trigger: "x", To: to}
}

// TestPeriods: the pending and firing spans of a trigger within a window,
// the last state lasting to the window's end, repeats merged.
func TestPeriods(t *testing.T) {
	from, to := t0.Add(10*time.Minute), t0.Add(70*time.Minute)
	trs := mergeTransitions([]rewind.Transition{
		tr(5*time.Minute, rewind.StatePending), // before the window, lasting into it
		tr(12*time.Minute, rewind.StateOK),
		tr(30*time.Minute, rewind.StatePending),
		tr(32*time.Minute, rewind.StateFiring),
		tr(30*time.Minute, rewind.StatePending), // the same, from a decision record
		tr(40*time.Minute, rewind.StateInsufficientData),
		tr(60*time.Minute, rewind.StatePending),
	})
	if len(trs) != 6 {
		t.Fatalf("merged: %d transitions, want 6", len(trs))
	}
	got := periods(trs, from, to)
	want := []period{
		{t0.Add(10 * time.Minute), t0.Add(12 * time.Minute), rewind.StatePending},
		{t0.Add(30 * time.Minute), t0.Add(32 * time.Minute), rewind.StatePending},
		{t0.Add(32 * time.Minute), t0.Add(40 * time.Minute), rewind.StateFiring},
		{t0.Add(60 * time.Minute), t0.Add(70 * time.Minute), rewind.StatePending},
	}
	if len(got) != len(want) {
		t.Fatalf("periods %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) || got[i].State != want[i].State {
			t.Errorf("period %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestHistoryBounded: a flapping trigger keeps its newest transitions, and
// a system that left the policy is forgotten.
func TestHistoryBounded(t *testing.T) {
	h := NewHistory()
	for i := range 3 * historyPerTrigger {
		to := rewind.StatePending
		if i%2 == 1 {
			to = rewind.StateOK
		}
		at := t0.Add(time.Duration(i) * time.Second)
		h.Record("flappy", at, []rewind.Transition{{At: at, Trigger: "x", To: to}})
	}
	got := h.Transitions("flappy", "x")
	if len(got) != historyPerTrigger || !got[len(got)-1].At.Equal(t0.Add(time.Duration(3*historyPerTrigger-1)*time.Second)) {
		t.Fatalf("kept %d transitions, the last at %v", len(got), got[len(got)-1].At)
	}
	h.Record("other", t0.Add(historyIdle+time.Hour), nil)
	if len(h.Transitions("flappy", "x")) != 0 {
		t.Error("a system not evaluated for hours is still remembered")
	}
	var nilHistory *History
	nilHistory.Record("a", t0, nil)
	if nilHistory.Transitions("a", "x") != nil {
		t.Error("a nil History has transitions")
	}
}
