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
	OutcomeTrue   Outcome = "true"    // condition evaluated, true
	OutcomeNoData Outcome = "no-data" // empty, NaN, ±Inf, no traffic, too few requests
	OutcomeError  Outcome = "error"   // the query failed
)

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
