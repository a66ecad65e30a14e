// Package decide is Rewind's decision logic: a pure state machine per
// trigger (docs/decisions.md) and the per-system bookkeeping around it. It does no
// I/O: observations and the time come in, states and decisions go out, so
// the same code runs live, in backtests and in the demo.
package decide

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
)

// Status is one trigger's state machine.
type Status struct {
	State    rewind.TriggerState `json:"state"`
	ActiveAt time.Time           `json:"activeAt,omitzero"` // first of the unbroken run of worse evaluations
	Since    time.Time           `json:"since,omitzero"`    // when State was entered
	Last     rewind.Observation  `json:"last"`
	// Evidence is a sequential judge's anytime-valid test of the current
	// episode (reported in Last.Judge); LastWorse is the latest worse
	// evaluation, which tells a run that continues an episode from one that
	// begins a new one.
	Evidence  judge.Evidence `json:"-"`
	LastWorse time.Time      `json:"-"`
}

// Rule is what the state machine needs of a trigger.
type Rule struct {
	For      time.Duration
	OnNoData policy.OnNoData
	// Seq is set for a sequential judge: its evidence is accumulated here
	// from the observations' Steps instead of read from their outcome.
	Seq *Sequential
}

// Sequential is the test of a sequential judge.
type Sequential struct {
	Test    judge.SeqTest
	Alpha   float64
	Latency bool
	// Step is the interval the Step counts cover; an observation less than
	// Step after the previous one (a backtest with a shorter --step) would
	// count requests twice and adds nothing.
	Step time.Duration
	// Window is the judge's window: a run that begins at most Window after
	// the latest worse evaluation continues that run's episode (the seed's
	// measure flickers on this scale); a later one begins a new episode.
	Window time.Duration
}

// RuleOf extracts the state-machine rule of a compiled trigger.
func RuleOf(t *policy.Trigger) Rule {
	r := Rule{For: t.For, OnNoData: t.OnNoData}
	if j := t.Judge; j != nil && j.Sequential {
		s := &Sequential{Alpha: j.Alpha, Latency: j.Test == "latency", Step: j.Step, Window: j.Window,
			Test: judge.SeqTest{MinEffect: max(j.MinEffect, 1/j.MinEffect), Decrease: j.Direction == "decrease"}}
		if j.Above != nil {
			s.Test.Above = *j.Above
		}
		r.Seq = s
	}
	return r
}

// Assess advances a trigger's state machine by one observation taken at
// obs.At. It is the whole decision rule, for every trigger form:
//
//   - worse: the condition holds by its own measure (outcome true, or for
//     the judge form unproven: the effect's point estimate is past its
//     threshold but the evidence does not suffice yet). A worse
//     observation starts (or continues) an active run at ActiveAt; the
//     trigger is pending until it has been worse for For (obs.At −
//     ActiveAt ≥ For) and the evidence suffices at that evaluation, then
//     firing, and it stays firing while worse;
//   - the evidence suffices when the outcome is true: for a fixed-window
//     judge, significance in this evaluation's window; for a sequential
//     judge, the e-value of the run's episode (Evidence, fed with the
//     counts of each interval that follows a worse evaluation) at or above
//     1/α; for every other form, the condition itself;
//   - a false condition is ok; no data is insufficient-data; a failed query
//     is degraded; each of these ends the active run (resets ActiveAt);
//   - with onNoData: fire, no data counts as a worse condition with
//     sufficient evidence.
func Assess(prev Status, obs rewind.Observation, r Rule) Status {
	next := Status{ActiveAt: prev.ActiveAt, Evidence: prev.Evidence, LastWorse: prev.LastWorse}
	noDataFires := obs.Outcome == rewind.OutcomeNoData && r.OnNoData == policy.NoDataFire
	worse := obs.Outcome.Worse() || noDataFires
	proven := obs.Outcome == rewind.OutcomeTrue || noDataFires
	if r.Seq != nil && obs.Outcome.Worse() {
		obs, proven = r.Seq.assess(&next.Evidence, prev, obs)
	} else if r.Seq != nil && obs.Step != nil && r.Seq.Latency {
		next.Evidence.SetBound(obs.Step.Bound)
	}
	next.Last = obs
	switch {
	case worse:
		if next.ActiveAt.IsZero() {
			next.ActiveAt = obs.At
		}
		next.LastWorse = obs.At
		next.State = rewind.StatePending
		if prev.State == rewind.StateFiring || (obs.At.Sub(next.ActiveAt) >= r.For && proven) {
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

// assess advances a sequential judge's evidence by a worse observation and
// reports whether it suffices. Evidence is kept per episode: the active runs
// of the trigger separated by less than its window (a short break in the
// seed's measure, the flicker of a noisy window, does not throw away what
// was learnt). A run that begins later begins a new episode, whose share of
// α is smaller. The worse observation that begins a run adds nothing (the
// run was chosen by its window); each later one adds the counts of its
// interval, which the previous, worse, observation had committed to count
// before they were seen.
func (s *Sequential) assess(e *judge.Evidence, prev Status, obs rewind.Observation) (rewind.Observation, bool) {
	switch {
	case e.Episode == 0: // the life's first, or the first after a rollback
		e.Begin()
	case prev.ActiveAt.IsZero():
		if prev.LastWorse.IsZero() || obs.At.Sub(prev.LastWorse) > s.Window {
			e.Begin()
		}
	case obs.Step != nil && obs.At.Sub(prev.Last.At) >= s.Step:
		st := obs.Step
		if s.Latency {
			e.AddTail(st.Canary.Le, st.Canary.Cum, st.Baseline.Le, st.Baseline.Cum)
		} else {
			e.Add(judge.Counts{Bad: st.Canary.Bad, Total: st.Canary.Total},
				judge.Counts{Bad: st.Baseline.Bad, Total: st.Baseline.Total}, s.Test)
		}
	}
	if obs.Step != nil && s.Latency {
		e.SetBound(obs.Step.Bound)
	}
	proven := e.Suffices(s.Alpha)
	if obs.Judge != nil {
		j := *obs.Judge
		j.EValue, j.Episode = rewind.Float(e.EValue()), e.Episode
		j.PValue = min(1, 1/e.EValue())
		j.Detail = obs.Reason + "; " + e.Describe(s.Alpha, s.Test, s.Latency)
		obs.Judge, obs.Reason = &j, j.Detail
	}
	if proven {
		obs.Outcome = rewind.OutcomeTrue
	}
	return obs, proven
}
