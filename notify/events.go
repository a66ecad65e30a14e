package notify

import (
	"context"
	"maps"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
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

// BlindEvent is the event of a system whose queries have failed for several
// cycles since since.
func BlindEvent(system, reason string, since time.Time) rewind.Event {
	kind := rewind.EventAnalyzerBlind
	return rewind.Event{Kind: kind, Severity: SeverityOf(kind, nil), System: system, Reason: reason, At: since}
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

// Progress returns a callback for plan.Runner.Progress that publishes the
// events of each step change (StepEvents), with thresholds from p (may be
// nil) and links from links (may be nil: the evidence directory only). It
// returns once the notices are recorded, bounded by EnqueueTimeout; a
// failure is logged and never reaches the rollback.
func (o *Outbox) Progress(p *policy.Policy, links func(*rewind.Rollback) rewind.Links) func(*rewind.Rollback, rewind.StepRecord) {
	n := &Notices{Outbox: o, Policy: func() *policy.Policy { return p }, Links: links}
	return func(rb *rewind.Rollback, step rewind.StepRecord) {
		_ = n.rollback(context.Background(), rb, StepEvents(rb, step)) // logged by Publish
	}
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
