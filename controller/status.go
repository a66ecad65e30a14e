package controller

import (
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/watch"
)

// SystemStatus is what the API shows of a system.
type SystemStatus struct {
	Name      string          `json:"name"`
	Interval  string          `json:"interval"`
	Mode      string          `json:"mode"`
	Paused    bool            `json:"paused"`
	Blind     bool            `json:"blind"`
	InFlight  string          `json:"rollbackInFlight,omitempty"`
	LastCycle time.Time       `json:"lastEvaluation,omitzero"`
	Triggers  []TriggerStatus `json:"triggers"`
	// Watch is a rollout-watch system's rollout, phase and times.
	Watch *watch.Status `json:"watch,omitempty"`
}

// TriggerStatus is one trigger's state and last values.
type TriggerStatus struct {
	Name     string              `json:"name"`
	State    rewind.TriggerState `json:"state"`
	Action   rewind.Action       `json:"action"`
	For      string              `json:"for"`
	ActiveAt time.Time           `json:"activeAt,omitzero"`
	Since    time.Time           `json:"since,omitzero"`
	Canary   *float64            `json:"canary,omitempty"`
	Baseline *float64            `json:"baseline,omitempty"`
	Reason   string              `json:"reason,omitempty"`
	Judge    *rewind.Judgement   `json:"judge,omitempty"`
}

// Systems reports every system, by name.
func (c *Controller) Systems() []SystemStatus {
	var out []SystemStatus
	for _, s := range c.systems() {
		c.mu.Lock()
		st := SystemStatus{Name: s.cfg.Name, Interval: s.cfg.Interval.String(), Mode: string(s.cfg.Rollback.Mode), Paused: s.paused,
			Blind: s.state.Blind, InFlight: s.inFlight, LastCycle: s.state.LastAt}
		for _, ts := range s.state.Triggers {
			st.Triggers = append(st.Triggers, TriggerStatus{Name: ts.Trigger.Name, State: ts.State, Action: ts.Trigger.Action,
				For: ts.Trigger.For.String(), ActiveAt: ts.ActiveAt, Since: ts.Since,
				Canary: ts.Last.Canary, Baseline: ts.Last.Baseline, Reason: ts.Last.Reason, Judge: ts.Last.Judge})
		}
		c.mu.Unlock()
		if s.live != nil {
			ws := s.live.Status()
			st.Watch = &ws
		}
		out = append(out, st)
	}
	return out
}
