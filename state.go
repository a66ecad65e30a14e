package rewind

import "time"

// TriggerState is the state of one trigger's state machine (docs/decisions.md).
type TriggerState string

const (
	StateOK               TriggerState = "ok"
	StatePending          TriggerState = "pending"
	StateFiring           TriggerState = "firing"
	StateInsufficientData TriggerState = "insufficient-data"
	StateDegraded         TriggerState = "degraded"
)

// Action is what a firing trigger asks for.
type Action string

const (
	ActionRollback Action = "rollback"
	ActionNotify   Action = "notify"
)

// Outcome is what one evaluation of a trigger's condition found.
type Outcome string

const (
	OutcomeFalse  Outcome = "false"   // condition evaluated, false
	OutcomeTrue   Outcome = "true"    // condition evaluated, true (judge: worse, and the evidence suffices)
	OutcomeNoData Outcome = "no-data" // empty, NaN, ±Inf, no traffic, too few requests
	OutcomeError  Outcome = "error"   // the query failed
	// OutcomeUnproven is a judge-form condition that holds by the seed's own
	// measure (the effect's point estimate is past minEffect, or the share
	// past above) while the statistical evidence does not (yet) suffice: it
	// counts toward the hold time but never fires (decide.Assess).
	OutcomeUnproven Outcome = "unproven"
)

// Worse reports whether o counts toward a trigger's hold time: the
// condition holds, proven or not.
func (o Outcome) Worse() bool { return o == OutcomeTrue || o == OutcomeUnproven }

// Reading is one resolved query and what it returned at one evaluation.
type Reading struct {
	Side   string    `json:"side"` // canary, baseline, expr, traffic, bad, total, buckets
	Query  string    `json:"query"`
	At     time.Time `json:"at"`
	Value  *float64  `json:"value,omitempty"`
	Series int       `json:"series"`
	Error  string    `json:"error,omitempty"`
}

// Observation is one evaluation of one trigger at one instant.
type Observation struct {
	Trigger  string     `json:"trigger"`
	At       time.Time  `json:"at"`
	Outcome  Outcome    `json:"outcome"`
	Canary   *float64   `json:"canary,omitempty"`
	Baseline *float64   `json:"baseline,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Readings []Reading  `json:"readings,omitempty"`
	Judge    *Judgement `json:"judge,omitempty"`
	// Step is what a sequential judge adds to its evidence at this
	// evaluation; nil for every other trigger. Its totals are in Judge.
	Step *Step `json:"-"`
}

// Step is the request counts of one evaluation interval of a sequential
// judge: the requests since the previous evaluation (the policy's interval),
// not a window. The interval's counts come from the differences of the
// counters, so consecutive steps never overlap.
type Step struct {
	Canary, Baseline StepCounts
	// Bound is, for a latency judge, the upper bound of the baseline's
	// q-quantile bucket in this evaluation's window: the threshold above
	// which the next interval's requests are counted (0: none).
	Bound float64
}

// StepCounts is one side's counts of a Step: bad (or, for latency, every)
// requests out of Total; for latency, Le and Cum are the interval's
// cumulative histogram (ascending bounds, +Inf last).
type StepCounts struct {
	Bad, Total float64
	Le, Cum    []float64
}

// Judgement is the statistical evidence of a judge-form trigger.
type Judgement struct {
	Test       string             `json:"test"`
	PValue     float64            `json:"pValue"`
	Alpha      float64            `json:"alpha"`
	Effect     *float64           `json:"effect,omitempty"`
	EffectLow  *float64           `json:"effectLow,omitempty"`
	EffectHigh *float64           `json:"effectHigh,omitempty"`
	MinEffect  float64            `json:"minEffect,omitempty"`
	Counts     map[string]float64 `json:"counts,omitempty"`
	Needed     *float64           `json:"neededRequests,omitempty"`
	Detail     string             `json:"detail,omitempty"`
	// Sequential judges: the e-value of the current episode (the Episode-th
	// of the canary's life), which proves the canary worse once it reaches
	// 1/Alpha; PValue is then min(1, 1/EValue), an anytime-valid p-value.
	Sequential bool     `json:"sequential,omitempty"`
	EValue     *float64 `json:"eValue,omitempty"`
	Episode    int      `json:"episode,omitempty"`
}

// Transition is a change of a trigger's state.
type Transition struct {
	At       time.Time    `json:"at"`
	System   string       `json:"system,omitempty"`
	Trigger  string       `json:"trigger"`
	From     TriggerState `json:"from"`
	To       TriggerState `json:"to"`
	Canary   *float64     `json:"canary,omitempty"`
	Baseline *float64     `json:"baseline,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Judge    *Judgement   `json:"judge,omitempty"`
}

// Float returns a pointer to v, for the optional values above; nil when v
// is NaN or ±Inf, which are no data (docs/decisions.md): a value that is not
// finite is never shown, journaled or sent.
func Float(v float64) *float64 {
	if !IsFinite(v) {
		return nil
	}
	return &v
}
