package notify

import (
	"maps"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// AutomaticRequester is the Requester of rollbacks Rewind decided itself.
const AutomaticRequester = "rewind"

// SeverityOf is an event kind's severity. A decided rollback takes the
// highest severity of its firing triggers (critical without any).
func SeverityOf(kind rewind.EventKind, d *rewind.Decision) rewind.Severity {
	switch kind {
	case rewind.EventRollbackDecided:
		best := rewind.Severity("")
		if d != nil {
			for _, t := range d.Triggers {
				if s := rewind.Severity(t.Severity); t.State == rewind.StateFiring && (best == "" || s.Rank() > best.Rank()) {
					best = s
				}
			}
		}
		if best == "" {
			best = rewind.SeverityCritical
		}
		return best
	case rewind.EventRollbackFailed, rewind.EventBaselineUnhealthy:
		return rewind.SeverityCritical
	case rewind.EventManualRollbackRequested, rewind.EventPolicyRefused:
		return rewind.SeverityError
	case rewind.EventAnalyzerBlind:
		return rewind.SeverityWarning
	}
	return rewind.SeverityInfo
}

// EventOf is the event of kind about rb, made at at: its severity, the
// decision's findings (thresholds maps trigger names to their conditions as
// written, see report.Thresholds), and snapshots of the decision and of rb.
func EventOf(kind rewind.EventKind, rb *rewind.Rollback, thresholds map[string]string, at time.Time) rewind.Event {
	snap := snapshot(rb)
	e := rewind.Event{
		Kind: kind, Severity: SeverityOf(kind, rb.Decision), System: rb.System, RollbackID: rb.ID,
		Reason: rb.Reason, Findings: rewind.FindingsOf(rb.Decision, thresholds),
		Decision: rb.Decision, Rollback: snap, At: at,
		Links: rewind.Links{Evidence: rb.Evidence},
	}
	switch kind {
	case rewind.EventRollbackFailed:
		if rb.Error != "" {
			e.Reason = rb.Error
		} else if _, why := outcome(rb); why != "" {
			e.Reason = why
		}
	case rewind.EventBaselineUnhealthy:
		if s := rb.Step(rewind.StepCheckBaseline); s != nil && s.Detail != "" {
			e.Reason = s.Detail
		}
	}
	return e
}

// StepEvents are the kinds of event that a change of step means, for
// Runner.Progress: the rollback decided (or requested, for a manual one) as
// long as no other step has moved (publishing it again is harmless: the
// outbox keeps one), the baseline unhealthy when check-baseline escalates,
// and completed or failed when verify, the last step, settles.
func StepEvents(rb *rewind.Rollback, step rewind.StepRecord) []rewind.EventKind {
	var out []rewind.EventKind
	first := true
	for _, s := range rb.Steps {
		if s.Name != step.Name && s.State != rewind.StepPending {
			first = false
		}
	}
	if first {
		if rb.Requester == AutomaticRequester {
			out = append(out, rewind.EventRollbackDecided)
		} else {
			out = append(out, rewind.EventManualRollbackRequested)
		}
	}
	if step.Name == rewind.StepCheckBaseline && step.State == rewind.StepEscalated {
		out = append(out, rewind.EventBaselineUnhealthy)
	}
	if step.Name == rewind.StepVerify && settled(step.State) {
		if failed, _ := outcome(rb); failed {
			out = append(out, rewind.EventRollbackFailed)
		} else {
			out = append(out, rewind.EventRollbackCompleted)
		}
	}
	return out
}

// outcome mirrors the plan's: failed if a step failed or verify escalated.
func outcome(rb *rewind.Rollback) (failed bool, why string) {
	for _, s := range rb.Steps {
		switch {
		case s.State == rewind.StepFailed:
			return true, "step " + string(s.Name) + " failed: " + s.Error
		case s.Name == rewind.StepVerify && s.State == rewind.StepEscalated:
			return true, "verification failed: " + s.Detail
		}
	}
	return false, ""
}

func settled(s rewind.StepState) bool {
	return s != rewind.StepPending && s != rewind.StepRunning
}

// snapshot copies rb deeply enough that the runner's later changes do not
// show through: the record, its steps and their facts.
func snapshot(rb *rewind.Rollback) *rewind.Rollback {
	c := *rb
	c.Steps = make([]rewind.StepRecord, len(rb.Steps))
	for i, s := range rb.Steps {
		s.Facts = maps.Clone(s.Facts)
		c.Steps[i] = s
	}
	return &c
}
