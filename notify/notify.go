// Package notify tells people what Rewind did, reliably: a durable outbox
// in the store, a background dispatcher, and the routing of events to the
// notifiers that the policy names for each system (docs/rollback.md, docs/policy.md).
//
// The stages, as in Alertmanager's notification pipeline:
//
//	Publish: route → dedup (one notice per event and notifier) → record
//	Run:     per notifier, oldest first → attempt → record the outcome:
//	         delivered | retry with exponential backoff and jitter (never
//	         sooner than a receiver's Retry-After) | failed (rejected) |
//	         expired (older than MaxAge; logged as an error)
//
// A notice is recorded before it is sent, so notices survive restarts: a new
// Outbox on the same store delivers what an old one left pending. A
// notifier that is down never delays a rollback: Publish only writes to the
// store, bounded by EnqueueTimeout, and never returns an error to the
// rollback. Notices to one notifier are delivered in the order they were
// published; a later one waits for the earlier one to settle.
//
// Delivery is at least once: a process killed after a receiver accepted a
// notice but before its outcome was recorded sends it again. Receivers can
// tell: the webhook's X-Rewind-Delivery header, PagerDuty's dedup_key and
// the email's Message-ID are the same on every attempt.
//
// The channels are in notify/slack, notify/pagerduty, notify/email and
// notify/webhook; notify/channels builds them from a policy, and
// notify/notifytest is the test suite every notifier passes.
package notify

import (
	"context"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// State is where a notice is.
type State string

const (
	Pending   State = "pending"   // to be attempted at NextAttempt
	Delivered State = "delivered" // the receiver accepted it
	Failed    State = "failed"    // the receiver rejected it: not retried
	Expired   State = "expired"   // still failing at MaxAge: given up
)

// Notice is one event for one notifier, as the outbox stores it. It holds
// the notifier's name, never its URL, key or password.
type Notice struct {
	ID          int64        `json:"id"` // assigned by the store; orders the notices
	Notifier    string       `json:"notifier"`
	Key         string       `json:"key"` // dedup key: notifier and event key
	Event       rewind.Event `json:"event"`
	State       State        `json:"state"`
	Created     time.Time    `json:"created"`
	NextAttempt time.Time    `json:"nextAttempt"`
	Attempts    int          `json:"attempts"`
	LastError   string       `json:"lastError,omitempty"` // redacted by the notifier
	Done        time.Time    `json:"done,omitzero"`
}

// Outcome is the record of one attempt.
type Outcome struct {
	At          time.Time
	State       State     // Pending for a retry
	NextAttempt time.Time // for a retry
	Error       string
}

// Store is the outbox's durable half (store/sqlite implements it). Every
// write is durable when it returns; implementations are safe for concurrent
// use.
type Store interface {
	// Enqueue records the notices whose Key is not stored yet, in one
	// transaction, assigning their IDs in order, and returns how many it
	// added. A notice with a stored Key is left out (dedup).
	Enqueue(ctx context.Context, ns []Notice) (added int, err error)
	// Heads returns the oldest pending notice of each notifier.
	Heads(ctx context.Context) ([]Notice, error)
	// Record writes the outcome of an attempt at notice id and counts it.
	Record(ctx context.Context, id int64, o Outcome) error
	// Notices lists notices, oldest first; limit 0 lists all.
	Notices(ctx context.Context, f Filter) ([]Notice, error)
}

// Filter selects notices; zero fields do not filter.
type Filter struct {
	Notifier   string
	State      State
	RollbackID string // the notices of one rollback (Event.RollbackID)
	Limit      int
}

// Result labels rewind_notifications_total{notifier,result}.
type Result string

const (
	ResultDelivered Result = "delivered"
	ResultRetried   Result = "retried" // failed, will be tried again
	ResultFailed    Result = "failed"  // rejected, or no such notifier
	ResultExpired   Result = "expired" // given up at MaxAge
	ResultDropped   Result = "dropped" // could not be recorded in the outbox
)
