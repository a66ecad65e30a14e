package rewind

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EventKind names what an Event tells people.
type EventKind string

const (
	// EventRollbackDecided: an automatic rollback was decided and starts now.
	EventRollbackDecided EventKind = "rollback-decided"
	// EventRollbackCompleted: every step done or skipped, recovery verified.
	EventRollbackCompleted EventKind = "rollback-completed"
	// EventRollbackFailed: a step failed, or the verification did.
	EventRollbackFailed EventKind = "rollback-failed"
	// EventBaselineUnhealthy: the baseline that took the traffic is itself
	// unhealthy (check-baseline escalated): a critical escalation.
	EventBaselineUnhealthy EventKind = "baseline-unhealthy"
	// EventAnalyzerBlind: a system's queries failed for several consecutive
	// cycles; Rewind cannot see it and so cannot roll it back.
	EventAnalyzerBlind EventKind = "analyzer-blind"
	// EventManualRollbackRequested: an operator asked for a rollback.
	EventManualRollbackRequested EventKind = "manual-rollback-requested"
	// EventPolicyRefused: a changed policy failed validation; the previous
	// policy keeps running.
	EventPolicyRefused EventKind = "policy-refused"
	// EventGitOpsResumed: the GitOps reconciler (Flux, Argo CD) that a
	// rollback suspended was resumed, automatically once the revert was in
	// Git or by an operator; Reason says what was restored and why.
	EventGitOpsResumed EventKind = "gitops-resumed"
)

// EventKinds lists every kind of notice (an event for people), in the
// order above.
var EventKinds = []EventKind{
	EventRollbackDecided, EventRollbackCompleted, EventRollbackFailed,
	EventBaselineUnhealthy, EventAnalyzerBlind, EventManualRollbackRequested,
	EventPolicyRefused, EventGitOpsResumed,
}

// Kinds of the daemon's own events: published to every subscriber (the
// demo's terminal, a UI, the post-mortem writer) but not notices; the
// outbox derives its notices from them or leaves them out.
const (
	// EventEvaluated: one evaluation cycle of a system ended. Transitions
	// holds the trigger changes of the cycle, Decision the rollback decided
	// at it (if any), Blind whether the system is blind now.
	EventEvaluated EventKind = "evaluated"
	// EventStep: a rollback step changed state (journaled first). Rollback
	// is a snapshot of the rollback, Step the step's new record.
	EventStep EventKind = "rollback-step"
	// EventRollbackEnded: a rollback left the running state, succeeded or
	// failed (Rollback, with Reason the error that stopped it, if any). A
	// rollback interrupted by a shutdown has not ended: the next process
	// resumes it.
	EventRollbackEnded EventKind = "rollback-ended"
	// EventPolicyApplied: a policy took effect, at start or on a reload
	// (Reason names the file and its hash).
	EventPolicyApplied EventKind = "policy-applied"
)

// IsNotice reports whether events of kind k are notices for people, which
// the outbox delivers to the system's notifiers.
func (k EventKind) IsNotice() bool {
	for _, n := range EventKinds {
		if n == k {
			return true
		}
	}
	return false
}

// Publisher receives the daemon's events as they happen: evaluation
// cycles, rollback steps and ends, operators' requests, blind systems,
// policy changes. The daemon fans each event out to its subscribers (the
// outbox, the post-mortem writer, a terminal, a UI). Publish must return
// quickly and must not keep e (or what it points to) beyond the call
// unless it copies it; its error is logged by the caller and never stops
// the work that published the event.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, e Event) error

func (f PublisherFunc) Publish(ctx context.Context, e Event) error { return f(ctx, e) }

// Severity is how urgent an event is; the PagerDuty Events API v2 levels.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityError    Severity = "error"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Rank orders severities: critical 3, error 2, warning 1, info and unknown 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 3
	case SeverityError:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// Event is one notice for people about a system or a rollback. It holds no
// secret: it is stored in the outbox and sent as is to webhooks.
type Event struct {
	Kind       EventKind `json:"kind"`
	Severity   Severity  `json:"severity"`
	System     string    `json:"system"`
	RollbackID string    `json:"rollbackId,omitempty"`
	// Reason is the trigger list of an automatic rollback, the operator's
	// reason of a manual one, or what went wrong.
	Reason string `json:"reason"`
	// Findings are the decision's firing triggers: values against thresholds.
	Findings []Finding `json:"findings,omitempty"`
	// Decision and Rollback are snapshots taken when the event was made.
	Decision *Decision `json:"decision,omitempty"`
	Rollback *Rollback `json:"rollback,omitempty"`
	Links    Links     `json:"links,omitzero"`
	At       time.Time `json:"at"`
	// Transitions, Step and Blind are set on the daemon's own events
	// (EventEvaluated, EventStep); notices leave them empty.
	Transitions []Transition `json:"transitions,omitempty"`
	Step        *StepRecord  `json:"step,omitempty"`
	Blind       bool         `json:"blind,omitempty"`
}

// Key identifies the event: the same key is the same notice (the outbox
// enqueues it once per notifier). Rollback events are keyed by kind and
// rollback id; the others by kind, system and time.
func (e Event) Key() string {
	if e.RollbackID != "" {
		return string(e.Kind) + "/" + e.RollbackID
	}
	return string(e.Kind) + "/" + e.System + "/" + e.At.UTC().Format(time.RFC3339Nano)
}

// Title is a one-line summary, e.g. "Rollback decided: checkout".
func (e Event) Title() string {
	var what string
	switch e.Kind {
	case EventRollbackDecided:
		what = "Rollback decided"
	case EventRollbackCompleted:
		what = "Rollback completed"
	case EventRollbackFailed:
		what = "Rollback FAILED"
	case EventBaselineUnhealthy:
		what = "Baseline unhealthy during rollback"
	case EventAnalyzerBlind:
		what = "Analyzer blind"
	case EventManualRollbackRequested:
		what = "Manual rollback requested"
	case EventPolicyRefused:
		what = "Policy change refused"
	case EventGitOpsResumed:
		what = "GitOps reconciler resumed"
	default:
		what = string(e.Kind)
	}
	return what + ": " + e.System
}

// Links point people at more: the evidence bundle (a directory, or a URL
// where it is served), a dashboard, the rollback in Rewind's API or UI, and
// the post-mortem draft.
type Links struct {
	Evidence   string `json:"evidence,omitempty"`
	Dashboard  string `json:"dashboard,omitempty"`
	Rollback   string `json:"rollback,omitempty"`
	PostMortem string `json:"postMortem,omitempty"`
}

// List returns the links that are set, with a label each, in a fixed order.
func (l Links) List() []Link {
	var out []Link
	for _, x := range []Link{{"Evidence", l.Evidence}, {"Dashboard", l.Dashboard}, {"Rollback", l.Rollback}, {"Post-mortem", l.PostMortem}} {
		if x.Target != "" {
			out = append(out, x)
		}
	}
	return out
}

// Link is one labelled link: a URL, or a path on the controller's host.
type Link struct {
	Label  string
	Target string
}

// IsURL reports whether the target is an http(s) URL rather than a path.
func (l Link) IsURL() bool {
	return strings.HasPrefix(l.Target, "https://") || strings.HasPrefix(l.Target, "http://")
}

// Finding is one firing trigger of a decision as people read it: the
// canary's value against the baseline's and the threshold.
type Finding struct {
	Trigger  string   `json:"trigger"`
	Severity string   `json:"severity"`
	Canary   *float64 `json:"canary,omitempty"`
	Baseline *float64 `json:"baseline,omitempty"`
	// Threshold is what the values were held against: the condition as
	// written in the policy, or the statistical test's effect and alpha.
	Threshold string    `json:"threshold,omitempty"`
	Detail    string    `json:"detail,omitempty"` // e.g. the judge's counts and p-value
	ActiveAt  time.Time `json:"activeAt,omitzero"`
	At        time.Time `json:"at"`
}

// FindingsOf lists the firing triggers of d, in the decision's order.
// thresholds maps a trigger name to its condition as written (from the
// policy); without an entry, a judged trigger's threshold is taken from its
// judgement, and other triggers have none.
func FindingsOf(d *Decision, thresholds map[string]string) []Finding {
	if d == nil {
		return nil
	}
	var out []Finding
	for _, t := range d.Triggers {
		if t.State != StateFiring {
			continue
		}
		o := t.Observation
		f := Finding{
			Trigger: t.Trigger, Severity: t.Severity, Canary: o.Canary, Baseline: o.Baseline,
			Threshold: thresholds[t.Trigger], Detail: o.Reason, ActiveAt: t.ActiveAt, At: o.At,
		}
		if f.Threshold == "" && o.Judge != nil {
			f.Threshold = judgeThreshold(o.Judge)
		}
		out = append(out, f)
	}
	return out
}

func judgeThreshold(j *Judgement) string {
	var parts []string
	if j.MinEffect > 0 {
		parts = append(parts, "effect ≥ "+strconv.FormatFloat(j.MinEffect, 'g', -1, 64)+"×")
	}
	parts = append(parts, fmt.Sprintf("%s test at α = %s", j.Test, strconv.FormatFloat(j.Alpha, 'g', -1, 64)))
	return strings.Join(parts, ", ")
}

// Notifier delivers an event to one channel (Slack, PagerDuty, email, a
// webhook). Notify makes one attempt. On failure, retry says whether another
// attempt later may succeed (rate limits, 5xx, network errors, timeouts) or
// not (the receiver rejected the notice). A notifier that was told when to
// come back (HTTP 429 with Retry-After) returns an error wrapping a
// *RetryAfterError. Errors never contain secrets (webhook URLs, keys,
// passwords): implementations redact them.
type Notifier interface {
	Notify(ctx context.Context, e Event) (retry bool, err error)
}

// RetryAfterError says that the receiver asked not to be called again
// before After has passed.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }
