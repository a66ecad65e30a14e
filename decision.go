package rewind

import "time"

// Decision is the outcome of one evaluation cycle of a system that decided
// to roll back, with the evidence behind it.
type Decision struct {
	System     string            `json:"system"`
	At         time.Time         `json:"at"`
	Firing     []string          `json:"firing"`
	PolicyHash string            `json:"policyHash"`
	Triggers   []TriggerEvidence `json:"triggers"`
}

// TriggerEvidence is one trigger's part of a decision: its resolved queries,
// values with timestamps, the start of its active run and its state history.
type TriggerEvidence struct {
	Trigger     string       `json:"trigger"`
	Severity    string       `json:"severity"`
	Action      Action       `json:"action"`
	State       TriggerState `json:"state"`
	ActiveAt    time.Time    `json:"activeAt,omitzero"`
	For         string       `json:"for"`
	Observation Observation  `json:"observation"`
	History     []Transition `json:"history"`
}
