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
// Before a notice is sent it is claimed in the store (who sends it, until
// when), and an attempt under way when the process stops or loses the
// leadership is finished and recorded: a new leader on a shared store
// (store/kubernetes) waits for the claim and never sends a notice twice.
// Delivery is still at least once when a process is killed (SIGKILL, a node
// lost) after a receiver accepted a notice but before its outcome was
// recorded: the next process sends it again once the claim expires. Receivers can
// tell: the webhook's X-Rewind-Delivery header, PagerDuty's dedup_key and
// the email's Message-ID are the same on every attempt.
//
// The channels are in notify/slack, notify/pagerduty, notify/email and
// notify/webhook; notify/channels builds them from a policy, and
// notify/notifytest is the test suite every notifier passes.
package notify

import rewind "github.com/rewind-sre/rewind"

// The outbox's store interface and types live in the root package (see
// rewind.OutboxStore); these names stay for the code that uses them.
type (
	// State is where a notice is.
	State = rewind.NoticeState
	// Notice is one event for one notifier, as the outbox stores it.
	Notice = rewind.Notice
	// Outcome is the record of one attempt.
	Outcome = rewind.NoticeOutcome
	// Store is the outbox's durable half (store/sqlite, store/kubernetes).
	Store = rewind.OutboxStore
	// Filter selects notices.
	Filter = rewind.NoticeFilter
)

const (
	Pending   = rewind.NoticePending
	Delivered = rewind.NoticeDelivered
	Failed    = rewind.NoticeFailed
	Expired   = rewind.NoticeExpired
)

// Result labels rewind_notifications_total{notifier,result}.
type Result string

const (
	ResultDelivered Result = "delivered"
	ResultRetried   Result = "retried" // failed, will be tried again
	ResultFailed    Result = "failed"  // rejected, or no such notifier
	ResultExpired   Result = "expired" // given up at MaxAge
	ResultDropped   Result = "dropped" // could not be recorded in the outbox
)
