package decide

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
)

// BlindAfter is how many consecutive cycles with a failed query make a system blind.
const BlindAfter = 3

// historyLen bounds the per-trigger state history kept for evidence.
const historyLen = 6

// TriggerStatus is one trigger's state with a short history of transitions.
type TriggerStatus struct {
	Trigger *policy.Trigger
	Status
	rule    Rule
	history [historyLen]rewind.Transition
	nHist   int
}

// History returns the kept transitions, oldest first.
func (t *TriggerStatus) History() []rewind.Transition {
	n := min(t.nHist, historyLen)
	out := make([]rewind.Transition, 0, n)
	for i := t.nHist - n; i < t.nHist; i++ {
		out = append(out, t.history[i%historyLen])
	}
	return out
}

func (t *TriggerStatus) record(tr rewind.Transition) {
	t.history[t.nHist%historyLen] = tr
	t.nHist++
}

// SystemState is the decision state of one system.
type SystemState struct {
	System       *policy.System
	Triggers     []*TriggerStatus // in policy order
	FailedCycles int
	Blind        bool
	Evaluations  int
	LastAt       time.Time
}

// Cycle is what one evaluation cycle of a system changed and decided.
type Cycle struct {
	System       string
	At           time.Time
	Transitions  []rewind.Transition
	Firing       []string // rollback triggers firing at this cycle
	NotifyFiring []string // notify-only triggers firing at this cycle
	Inconclusive bool     // some trigger is insufficient-data or degraded
	Blind        bool
	BlindChanged bool
	// Decision is non-nil when a rollback trigger started firing at this
	// cycle: the moment a rollback is decided, with its evidence.
	Decision *rewind.Decision
}

// NewSystemState starts every trigger of sys in state ok.
func NewSystemState(sys *policy.System) *SystemState {
	s := &SystemState{System: sys, Triggers: make([]*TriggerStatus, len(sys.Triggers))}
	for i, t := range sys.Triggers {
		s.Triggers[i] = &TriggerStatus{Trigger: t, Status: Status{State: rewind.StateOK}, rule: RuleOf(t)}
	}
	return s
}

// Apply advances every trigger by its observation (obs[i] is of trigger i,
// all taken at the same instant at) and reports the cycle.
func (s *SystemState) Apply(at time.Time, obs []rewind.Observation, policyHash string) Cycle {
	c := Cycle{System: s.System.Name, At: at}
	failed, newlyFiring := false, false
	for i, ts := range s.Triggers {
		o := obs[i]
		o.At = at
		prev := ts.State
		ts.Status = Assess(ts.Status, o, ts.rule)
		if o.Outcome == rewind.OutcomeError {
			failed = true
		}
		if ts.State != prev {
			l := ts.Last // with a sequential judge's evidence
			tr := rewind.Transition{At: at, System: s.System.Name, Trigger: ts.Trigger.Name, From: prev, To: ts.State,
				Canary: l.Canary, Baseline: l.Baseline, Reason: l.Reason, Judge: l.Judge}
			ts.record(tr)
			c.Transitions = append(c.Transitions, tr)
			newlyFiring = newlyFiring || (ts.State == rewind.StateFiring && ts.Trigger.Action == rewind.ActionRollback)
		}
		switch ts.State {
		case rewind.StateFiring:
			if ts.Trigger.Action == rewind.ActionRollback {
				c.Firing = append(c.Firing, ts.Trigger.Name)
			} else {
				c.NotifyFiring = append(c.NotifyFiring, ts.Trigger.Name)
			}
		case rewind.StateInsufficientData, rewind.StateDegraded:
			c.Inconclusive = true
		}
	}
	s.Evaluations++
	s.LastAt = at
	if failed {
		s.FailedCycles++
	} else {
		s.FailedCycles = 0
	}
	blind := s.FailedCycles >= BlindAfter
	c.BlindChanged, s.Blind, c.Blind = blind != s.Blind, blind, blind
	if newlyFiring {
		c.Decision = s.decision(at, c.Firing, policyHash)
		// The canary is rolled back: its life ends, and with it the
		// sequential evidence and the count of episodes over which α is
		// spent.
		for _, ts := range s.Triggers {
			ts.Evidence, ts.LastWorse = judge.Evidence{}, time.Time{}
		}
	}
	return c
}

func (s *SystemState) decision(at time.Time, firing []string, policyHash string) *rewind.Decision {
	d := &rewind.Decision{System: s.System.Name, At: at, Firing: firing, PolicyHash: policyHash}
	for _, ts := range s.Triggers {
		d.Triggers = append(d.Triggers, rewind.TriggerEvidence{
			Trigger: ts.Trigger.Name, Severity: ts.Trigger.Severity, Action: ts.Trigger.Action,
			State: ts.State, ActiveAt: ts.ActiveAt, For: policy.Duration(ts.Trigger.For).String(),
			Observation: ts.Last, History: ts.History(),
		})
	}
	return d
}
