package kubernetes

import (
	"encoding/json"
	"fmt"
	"strings"

	rewind "github.com/rewind-sre/rewind"
)

// Bounds of what one object keeps. The evidence bundle keeps everything
// whole (decision.json, rollback.json); the object says what it shortened.
const (
	maxText        = 4 << 10 // one detail, error or reason
	maxTextTight   = 512     // the same, when the object is still too large
	maxHistory     = 20      // a trigger's state transitions kept
	maxReadings    = 20      // an observation's readings kept
	keepJournalEnd = 100     // journal entries kept at the end when the middle must go
)

// clip shortens s to at most n bytes (on a rune boundary), saying so.
func clip(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	const more = " …[shortened; whole in the evidence bundle]"
	cut := max(n-len(more), 0)
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + more, true
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// boundDecision returns d, or a copy shortened to maxHistory transitions and
// maxReadings readings per trigger, and whether it shortened anything.
func boundDecision(d *rewind.Decision) (*rewind.Decision, bool) {
	if d == nil {
		return nil, false
	}
	long := false
	for _, t := range d.Triggers {
		if len(t.History) > maxHistory || len(t.Observation.Readings) > maxReadings {
			long = true
		}
	}
	if !long {
		return d, false
	}
	c := *d
	c.Triggers = make([]rewind.TriggerEvidence, len(d.Triggers))
	for i, t := range d.Triggers {
		if n := len(t.History); n > maxHistory {
			t.History = t.History[n-maxHistory:]
		}
		if len(t.Observation.Readings) > maxReadings {
			t.Observation.Readings = t.Observation.Readings[:maxReadings]
		}
		c.Triggers[i] = t
	}
	return &c, true
}

// clipDecisionText shortens the free text of a decision copy in place.
func clipDecisionText(d *rewind.Decision, n int) bool {
	if d == nil {
		return false
	}
	any := false
	for i := range d.Triggers {
		t := &d.Triggers[i]
		var c bool
		t.Observation.Reason, c = clip(t.Observation.Reason, n)
		any = any || c
		for j := range t.Observation.Readings {
			t.Observation.Readings[j].Query, c = clip(t.Observation.Readings[j].Query, n)
			any = any || c
		}
		for j := range t.History {
			t.History[j].Reason, c = clip(t.History[j].Reason, n)
			any = any || c
		}
	}
	return any
}

// boundSpec keeps the spec's decision and reason within the budget.
func boundSpec(sp *rollbackSpec, budget int) {
	var notes []string
	var c bool
	if sp.Reason, c = clip(sp.Reason, maxText); c {
		notes = append(notes, "reason")
	}
	if sp.Decision, c = boundDecision(sp.Decision); c {
		notes = append(notes, fmt.Sprintf("decision: the last %d state transitions and first %d readings of each trigger", maxHistory, maxReadings))
	}
	if size(sp) > budget && sp.Decision != nil {
		d := *sp.Decision
		d.Triggers = append([]rewind.TriggerEvidence(nil), d.Triggers...)
		for i := range d.Triggers {
			t := &d.Triggers[i]
			t.History = append([]rewind.Transition(nil), t.History...)
			t.Observation.Readings = append([]rewind.Reading(nil), t.Observation.Readings...)
		}
		if clipDecisionText(&d, maxTextTight) {
			notes = append(notes, "decision: long queries and reasons")
		}
		sp.Decision = &d
	}
	if size(sp) > budget && sp.Decision != nil {
		d := *sp.Decision
		d.Triggers = append([]rewind.TriggerEvidence(nil), d.Triggers...)
		for i := range d.Triggers {
			d.Triggers[i].History = nil
			d.Triggers[i].Observation.Readings = nil
		}
		sp.Decision = &d
		notes = append(notes, "decision: every trigger's history and readings")
	}
	sp.Truncated = strings.Join(notes, "; ")
}

// boundStatus keeps the status within the budget: texts clipped, then
// clipped harder, then the middle of the journal left out.
func boundStatus(st *rollbackStatus, budget int) {
	var notes []string
	clipAll := func(n int) bool {
		any := false
		var c bool
		st.Error, c = clip(st.Error, n)
		any = any || c
		for i := range st.Steps {
			s := &st.Steps[i]
			s.Detail, c = clip(s.Detail, n)
			any = any || c
			s.Error, c = clip(s.Error, n)
			any = any || c
		}
		for i := range st.Journal {
			e := &st.Journal[i]
			e.Detail, c = clip(e.Detail, n)
			any = any || c
			e.Error, c = clip(e.Error, n)
			any = any || c
		}
		return any
	}
	if clipAll(maxText) {
		notes = append(notes, "long details")
	}
	if size(st) > budget && clipAll(maxTextTight) {
		notes = append(notes, "details")
	}
	if size(st) > budget && len(st.Journal) > keepJournalEnd+1 {
		left := len(st.Journal) - keepJournalEnd - 1
		st.Journal = append(st.Journal[:1:1], st.Journal[len(st.Journal)-keepJournalEnd:]...)
		st.JournalElided += left
	}
	if st.JournalElided > 0 {
		notes = append(notes, fmt.Sprintf("journal: %d entries after the first left out", st.JournalElided))
	}
	st.Truncated = strings.Join(notes, "; ")
}

func size(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
