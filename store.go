package rewind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// RollbackStore is the durable home of rollbacks and their journal. The
// plan runner writes through it before and after every step, so that a
// restarted process — or the next leader — can resume from it.
// Implementations (store/sqlite, store/kubernetes) are safe for concurrent
// use, every write is durable when it returns, and all of them pass the
// contract suite in store/storetest.
type RollbackStore interface {
	// Create records a new rollback, in state running, with a first journal
	// entry. If a rollback of the same system is already running in this
	// store it records nothing and returns an *InProgressError naming it
	// (errors.Is(err, ErrRollbackInProgress) holds). The check and the
	// insert are one atomic step, also across processes sharing the store.
	Create(ctx context.Context, rb *Rollback) error
	// Save replaces the stored record of rb with rb and appends event to its
	// journal, atomically. The store assigns event.Seq, and fills in
	// event.RollbackID and a zero event.At. An unknown rollback is
	// ErrRollbackNotFound. A store shared by processes refuses, with
	// ErrJournalMoved, a Save by a process whose view of the journal is out
	// of date because another process has written to it since: the writer
	// that lost the rollback (a deposed leader) stops there.
	Save(ctx context.Context, rb *Rollback, event JournalEntry) error
	// Get returns the stored record, or an error wrapping ErrRollbackNotFound.
	Get(ctx context.Context, id string) (*Rollback, error)
	// List returns stored rollbacks, newest first.
	List(ctx context.Context, opts ListOptions) ([]*Rollback, error)
	// Unfinished returns the rollbacks still in state running, oldest first:
	// the ones a restarted process (or a new leader) resumes. It hands them
	// to the caller: later Saves of them by this store handle go through.
	Unfinished(ctx context.Context) ([]*Rollback, error)
	// Journal returns a rollback's journal in the order it was written, or
	// an error wrapping ErrRollbackNotFound for an unknown rollback.
	Journal(ctx context.Context, id string) ([]JournalEntry, error)
}

// JournalEntry is one append-only line of a rollback's journal. A step's
// entries are written before it runs (State running, Attempt counting from
// 1) and after (done, skipped, escalated or failed, with Detail, Error, Facts
// and Duration). An entry with an empty Step is about the whole rollback:
// created, finished, or why it could not go on.
type JournalEntry struct {
	RollbackID string            `json:"rollbackId"`
	Seq        int64             `json:"seq"` // 1, 2, ... per rollback; assigned by the store
	At         time.Time         `json:"at"`
	Step       StepName          `json:"step,omitempty"`
	State      string            `json:"state"` // a StepState, or a RollbackState when Step is empty
	Attempt    int               `json:"attempt,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Error      string            `json:"error,omitempty"`
	Facts      map[string]string `json:"facts,omitempty"`
	Duration   time.Duration     `json:"duration,omitempty"`
}

// ListOptions filter List. Zero values do not filter; Limit 0 is no limit.
type ListOptions struct {
	System string
	State  RollbackState
	Limit  int
}

// ErrRollbackNotFound: no rollback with that id in the store.
var ErrRollbackNotFound = errors.New("rollback not found")

// ErrJournalMoved: another process wrote to the rollback's journal since
// this one last read or wrote it.
var ErrJournalMoved = errors.New("the rollback's journal was written by another process")

// InProgressError says which rollback of a system is already in progress,
// found either in the store or on the target's fence. It matches
// ErrRollbackInProgress with errors.Is.
type InProgressError struct {
	System string
	Holder string // the id of the rollback in progress
	Where  string // "store" or "fence"
}

func (e *InProgressError) Error() string {
	s := fmt.Sprintf("rollback %s of system %s already in progress", e.Holder, e.System)
	if e.Where != "" {
		s += " (" + e.Where + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrRollbackInProgress) hold.
func (e *InProgressError) Unwrap() error { return ErrRollbackInProgress }

// NoticeState is where a notice of the outbox is.
type NoticeState string

const (
	NoticePending   NoticeState = "pending"   // to be attempted at NextAttempt
	NoticeDelivered NoticeState = "delivered" // the receiver accepted it
	NoticeFailed    NoticeState = "failed"    // the receiver rejected it: not retried
	NoticeExpired   NoticeState = "expired"   // still failing at the outbox's MaxAge: given up
)

// Notice is one event for one notifier, as the outbox stores it. It holds
// the notifier's name, never its URL, key or password.
type Notice struct {
	ID          int64       `json:"id"` // assigned by the store; orders the notices
	Notifier    string      `json:"notifier"`
	Key         string      `json:"key"` // dedup key: notifier and event key
	Event       Event       `json:"event"`
	State       NoticeState `json:"state"`
	Created     time.Time   `json:"created"`
	NextAttempt time.Time   `json:"nextAttempt"`
	Attempts    int         `json:"attempts"`
	LastError   string      `json:"lastError,omitempty"` // redacted by the notifier
	Done        time.Time   `json:"done,omitzero"`
	// ClaimedBy and ClaimedUntil: the process attempting the notice now
	// (OutboxStore.Claim), and until when its claim holds.
	ClaimedBy    string    `json:"claimedBy,omitempty"`
	ClaimedUntil time.Time `json:"claimedUntil,omitzero"`
}

// Claimed reports whether another owner than owner holds an unexpired
// claim on n at now.
func (n Notice) Claimed(owner string, now time.Time) bool {
	return n.ClaimedBy != "" && n.ClaimedBy != owner && now.Before(n.ClaimedUntil)
}

// NoticeOutcome is the record of one attempt.
type NoticeOutcome struct {
	At          time.Time
	State       NoticeState // NoticePending for a retry
	NextAttempt time.Time   // for a retry
	Error       string
	// Owner is who made the attempt (the claim's owner); "" records
	// whoever claimed it.
	Owner string
}

// NoticeFilter selects notices; zero fields do not filter.
type NoticeFilter struct {
	Notifier   string
	State      NoticeState
	RollbackID string // the notices of one rollback (Event.RollbackID)
	Limit      int
}

// OutboxStore is the notification outbox's durable half (store/sqlite and
// store/kubernetes implement it). Every write is durable when it returns;
// implementations are safe for concurrent use and pass store/storetest.
type OutboxStore interface {
	// Enqueue records the notices whose Key is not stored yet, assigning
	// their IDs in order (later than every ID it assigned before), and
	// returns how many it added. A notice with a stored Key is left out
	// (dedup), also across processes.
	Enqueue(ctx context.Context, ns []Notice) (added int, err error)
	// Heads returns the oldest pending notice of each notifier, claimed or
	// not, oldest first.
	Heads(ctx context.Context) ([]Notice, error)
	// Claim reserves pending notice id for one attempt by owner until until,
	// before the notifier is called: another process (a new leader) that
	// reads it sees the claim and does not send it too. It fails with
	// ErrNoticeClaimed when the notice is no longer pending or another
	// owner's claim holds at now, and ErrNoticeNotFound for an unknown id.
	// Claiming again one's own claim extends it.
	Claim(ctx context.Context, id int64, owner string, now, until time.Time) error
	// Record writes the outcome of an attempt at notice id, counts it and
	// clears the claim. With o.Owner set, it fails with ErrNoticeClaimed
	// when another owner has claimed the notice since (this one's claim
	// expired): that owner records its own attempt.
	Record(ctx context.Context, id int64, o NoticeOutcome) error
	// Notices lists notices, oldest first; limit 0 lists all.
	Notices(ctx context.Context, f NoticeFilter) ([]Notice, error)
}

// ErrNoticeNotFound: no notice with that id in the outbox.
var ErrNoticeNotFound = errors.New("no such notice in the outbox")

// ErrNoticeClaimed: another process is attempting the notice, or it was
// settled since it was read.
var ErrNoticeClaimed = errors.New("the notice is claimed by another process or already settled")

// Store is everything Rewind keeps: rollbacks with their journal, and the
// notification outbox.
type Store interface {
	RollbackStore
	OutboxStore
	Close() error
}

// ValidRollbackID checks a rollback id: 1 to 128 characters, ASCII letters,
// digits, '.', '_' and '-' (NewID's ids, e.g. rb-20260101T003130Z-3f2a91c0),
// so that every store can key and label by it.
func ValidRollbackID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("rollback id %q: want 1 to 128 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("rollback id %q: only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// EvidenceStore keeps evidence bundles where people and every replica can
// read them after the pod that wrote them is gone: an S3-compatible bucket
// (evidence/s3). Without one, the bundle stays in its local directory
// (a PersistentVolume's, in a cluster).
type EvidenceStore interface {
	// Put stores every file under dir (recursively, by its path relative to
	// dir) in the bundle of rollback id, and returns the bundle's location
	// (e.g. s3://bucket/prefix/id/). Each file is written once: one already
	// stored is left as it is, so that Put is safe to repeat (a resumed
	// step, the post-mortem draft added later).
	Put(ctx context.Context, id, dir string) (location string, err error)
	// Files lists the files of rollback id's bundle, by name.
	Files(ctx context.Context, id string) ([]string, error)
	// Open reads one file of rollback id's bundle.
	Open(ctx context.Context, id, name string) (io.ReadCloser, error)
}
