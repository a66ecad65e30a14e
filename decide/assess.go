// Package decide is Rewind's decision logic: a pure state machine per
// trigger (docs/decisions.md) and the per-system bookkeeping around it. It does no
// I/O: observations and the time come in, states and decisions go out, so
// the same code runs live, in backtests and in the demo.
package decide

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// Status is one trigger's state machine.
type Status struct {
	State    rewind.TriggerState `json:"state"`
	ActiveAt time.Time           `json:"activeAt,omitzero"` // first of the unbroken run of true evaluations
	Since    time.Time           `json:"since,omitzero"`    // when State was entered
	Last     rewind.Observation  `json:"last"`
}

// Rule is what the state machine needs of a trigger.
type Rule struct {
	For      time.Duration
	OnNoData policy.OnNoData
}

// RuleOf extracts the state-machine rule of a compiled trigger.
func RuleOf(t *policy.Trigger) Rule { return Rule{For: t.For, OnNoData: t.OnNoData} }

// Assess advances a trigger's state machine by one observation taken at
// obs.At. It is the whole decision rule:
//
//   - a true condition starts (or continues) an active run at ActiveAt;
//     the trigger is pending until obs.At-ActiveAt >= For, then firing;
//   - a false condition is ok; no data is insufficient-data; a failed query
//     is degraded; each of these ends the active run (resets ActiveAt);
//   - with onNoData: fire, no data counts as a true condition.
func Assess(prev Status, obs rewind.Observation, r Rule) Status {
	next := Status{ActiveAt: prev.ActiveAt, Last: obs}
	holds := obs.Outcome == rewind.OutcomeTrue || (obs.Outcome == rewind.OutcomeNoData && r.OnNoData == policy.NoDataFire)
	switch {
	case holds:
		if next.ActiveAt.IsZero() {
			next.ActiveAt = obs.At
		}
		next.State = rewind.StatePending
		if obs.At.Sub(next.ActiveAt) >= r.For {
			next.State = rewind.StateFiring
		}
	case obs.Outcome == rewind.OutcomeFalse:
		next.State, next.ActiveAt = rewind.StateOK, time.Time{}
	case obs.Outcome == rewind.OutcomeNoData:
		next.State, next.ActiveAt = rewind.StateInsufficientData, time.Time{}
	default:
		next.State, next.ActiveAt = rewind.StateDegraded, time.Time{}
	}
	next.Since = prev.Since
	if next.State != prev.State || prev.Since.IsZero() {
		next.Since = obs.At
	}
	return next
}
