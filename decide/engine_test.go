package decide

import (
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

func testSystem(t testing.TB) *policy.System {
	t.Helper()
	p, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p.Systems[0]
}

func allObs(sys *policy.System, o rewind.Outcome) []rewind.Observation {
	obs := make([]rewind.Observation, len(sys.Triggers))
	for i, tr := range sys.Triggers {
		obs[i] = rewind.Observation{Trigger: tr.Name, Outcome: o}
	}
	return obs
}

func TestBlindAfterThreeFailedCycles(t *testing.T) {
	sys := testSystem(t)
	st := NewSystemState(sys)
	for i := 0; i < BlindAfter; i++ {
		c := st.Apply(t0.Add(time.Duration(i)*sys.Interval), allObs(sys, rewind.OutcomeError), "h")
		if c.Blind != (i == BlindAfter-1) || c.BlindChanged != (i == BlindAfter-1) {
			t.Fatalf("cycle %d: blind=%v changed=%v", i, c.Blind, c.BlindChanged)
		}
		if len(c.Firing) > 0 || c.Decision != nil {
			t.Fatal("failed queries must never decide a rollback")
		}
	}
	c := st.Apply(t0.Add(10*sys.Interval), allObs(sys, rewind.OutcomeFalse), "h")
	if c.Blind || !c.BlindChanged {
		t.Fatalf("a good cycle ends blindness: %+v", c)
	}
}

func TestDecisionCarriesEvidence(t *testing.T) {
	sys := testSystem(t)
	st := NewSystemState(sys)
	obs := allObs(sys, rewind.OutcomeFalse)
	obs[5] = rewind.Observation{Outcome: rewind.OutcomeTrue, Canary: rewind.Float(2), Readings: []rewind.Reading{{Side: "expr", Query: "q", Value: rewind.Float(2)}}}
	c := st.Apply(t0, obs, "hash")
	if c.Decision == nil || len(c.Firing) != 1 || c.Firing[0] != sys.Triggers[5].Name {
		t.Fatalf("expected a decision on %s, got %+v", sys.Triggers[5].Name, c)
	}
	d := c.Decision
	ev := d.Triggers[5]
	if d.PolicyHash != "hash" || ev.State != rewind.StateFiring || !ev.ActiveAt.Equal(t0) || len(ev.History) != 1 || ev.Observation.Readings[0].Query != "q" {
		t.Fatalf("evidence incomplete: %+v", ev)
	}
	if len(c.Transitions) != 1 || c.Transitions[0].To != rewind.StateFiring {
		t.Fatalf("transitions: %+v", c.Transitions)
	}
}

func TestNotifyActionNeverDecidesRollback(t *testing.T) {
	sys := *testSystem(t)
	tr := *sys.Triggers[5]
	tr.Action = rewind.ActionNotify
	sys.Triggers = []*policy.Trigger{&tr}
	st := NewSystemState(&sys)
	c := st.Apply(t0, []rewind.Observation{{Outcome: rewind.OutcomeTrue}}, "h")
	if c.Decision != nil || len(c.NotifyFiring) != 1 {
		t.Fatalf("%+v", c)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	sys := testSystem(t)
	st := NewSystemState(sys)
	for i := 0; i < 50; i++ {
		o := rewind.OutcomeTrue
		if i%2 == 1 {
			o = rewind.OutcomeFalse
		}
		st.Apply(t0.Add(time.Duration(i)*time.Minute), allObs(sys, o), "h")
	}
	h := st.Triggers[0].History()
	if len(h) != historyLen || !h[len(h)-1].At.Equal(t0.Add(49*time.Minute)) {
		t.Fatalf("history %d, last %v", len(h), h[len(h)-1].At)
	}
}

// TestDecisionEndsTheLife: a rollback decision clears every trigger's
// sequential evidence (the canary's life ends), and a trigger still worse
// after it begins a new episode rather than adding to none.
func TestDecisionEndsTheLife(t *testing.T) {
	sys := testSystem(t)
	var seq int
	for i, tr := range sys.Triggers {
		if tr.Judge != nil && tr.Judge.Sequential {
			seq = i
			break
		}
	}
	if !sys.Triggers[seq].Judge.Sequential {
		t.Skip("the built-in policy has no sequential judge")
	}
	st := NewSystemState(sys)
	obs := allObs(sys, rewind.OutcomeFalse)
	obs[seq] = rewind.Observation{Outcome: rewind.OutcomeUnproven, Judge: &rewind.Judgement{Test: "proportion"},
		Step: &rewind.Step{Canary: rewind.StepCounts{Bad: 1, Total: 150}, Baseline: rewind.StepCounts{Bad: 3, Total: 600}}}
	st.Apply(t0, obs, "h")
	st.Apply(t0.Add(30*time.Second), obs, "h")
	if e := st.Triggers[seq].Evidence; e.Episode != 1 || e.Intervals != 1 {
		t.Fatalf("before: %+v", e)
	}
	// Another trigger fires at once: a rollback is decided.
	fire := append([]rewind.Observation(nil), obs...)
	fire[5] = rewind.Observation{Outcome: rewind.OutcomeTrue}
	if c := st.Apply(t0.Add(time.Minute), fire, "h"); c.Decision == nil {
		t.Fatal("no decision")
	}
	if e := st.Triggers[seq].Evidence; e.Episode != 0 || e.Intervals != 0 {
		t.Fatalf("the decision kept the evidence: %+v", e)
	}
	st.Apply(t0.Add(90*time.Second), obs, "h")
	if e := st.Triggers[seq].Evidence; e.Episode != 1 || e.Intervals != 0 {
		t.Fatalf("after: %+v", e)
	}
}
