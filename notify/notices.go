package notify

import (
	"context"
	"errors"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
)

// Notices is the outbox's subscription to the daemon's events
// (rewind.Publisher): it records the notices they mean and leaves the rest
// out. A rollback step's change becomes the notices of StepEvents; a
// rollback's end becomes rollback-completed or rollback-failed (the same
// notice as at its verify step, recorded once: a rollback stopped before
// verify, for example when the fence could not be taken, is announced
// too); notice kinds (analyzer-blind, manual-rollback-requested,
// policy-refused, ...) are recorded as they are, with their kind's severity
// when they have none. Other events are not notices.
type Notices struct {
	Outbox *Outbox
	// Policy returns the policy in force, for the thresholds in findings;
	// nil or a nil result: none.
	Policy func() *policy.Policy
	// Links returns the links of a rollback's notices; nil: the evidence
	// directory only.
	Links func(*rewind.Rollback) rewind.Links
}

var _ rewind.Publisher = (*Notices)(nil)

// Publish records the notices e means; it returns once they are recorded,
// bounded by the outbox's EnqueueTimeout.
func (n *Notices) Publish(ctx context.Context, e rewind.Event) error {
	switch {
	case e.Kind == rewind.EventStep && e.Rollback != nil && e.Step != nil:
		return n.rollback(ctx, e.Rollback, StepEvents(e.Rollback, *e.Step))
	case e.Kind == rewind.EventRollbackEnded && e.Rollback != nil:
		kind := rewind.EventRollbackCompleted
		if e.Rollback.State == rewind.RollbackFailed {
			kind = rewind.EventRollbackFailed
		}
		return n.rollback(ctx, e.Rollback, []rewind.EventKind{kind})
	case e.Kind.IsNotice():
		if e.Severity == "" {
			e.Severity = SeverityOf(e.Kind, e.Decision)
		}
		return n.Outbox.Publish(ctx, e)
	}
	return nil
}

func (n *Notices) rollback(ctx context.Context, rb *rewind.Rollback, kinds []rewind.EventKind) error {
	if len(kinds) == 0 {
		return nil
	}
	var thresholds map[string]string
	if n.Policy != nil {
		if p := n.Policy(); p != nil {
			if sys := p.System(rb.System); sys != nil {
				thresholds = report.Thresholds(sys)
			}
		}
	}
	var errs []error
	for _, k := range kinds {
		e := EventOf(k, rb, thresholds, n.Outbox.now())
		if n.Links != nil {
			e.Links = n.Links(rb)
		}
		errs = append(errs, n.Outbox.Publish(ctx, e))
	}
	return errors.Join(errs...)
}
