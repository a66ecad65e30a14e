package plan

import (
	"context"
	"errors"
	"fmt"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Store is the durable home of rollbacks and their journal. The runner
// writes through it before and after every step, so that a restarted process
// can resume from it. Implementations (store/sqlite) must be safe for
// concurrent use, and every write must be durable when it returns.
type Store interface {
	// Create records a new rollback, in state running, with a first journal
	// entry. If a rollback of the same system is already running in this
	// store it records nothing and returns an *InProgressError naming it
	// (errors.Is(err, rewind.ErrRollbackInProgress) holds). The check and
	// the insert are one atomic step, also across processes sharing the store.
	Create(ctx context.Context, rb *rewind.Rollback) error
	// Save replaces the stored record of rb with rb and appends event to its
	// journal, atomically. The store assigns event.Seq, and fills in
	// event.RollbackID and a zero event.At. An unknown rollback is ErrNotFound.
	Save(ctx context.Context, rb *rewind.Rollback, event JournalEntry) error
	// Get returns the stored record, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*rewind.Rollback, error)
	// List returns stored rollbacks, newest first.
	List(ctx context.Context, opts ListOptions) ([]*rewind.Rollback, error)
	// Unfinished returns the rollbacks still in state running, oldest first:
	// the ones a restarted process resumes.
	Unfinished(ctx context.Context) ([]*rewind.Rollback, error)
	// Journal returns a rollback's journal in the order it was written, or
	// an error wrapping ErrNotFound for an unknown rollback.
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
	Step       rewind.StepName   `json:"step,omitempty"`
	State      string            `json:"state"` // a rewind.StepState, or a rewind.RollbackState when Step is empty
	Attempt    int               `json:"attempt,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	Error      string            `json:"error,omitempty"`
	Facts      map[string]string `json:"facts,omitempty"`
	Duration   time.Duration     `json:"duration,omitempty"`
}

// ListOptions filter List. Zero values do not filter; Limit 0 is no limit.
type ListOptions struct {
	System string
	State  rewind.RollbackState
	Limit  int
}

// ErrNotFound: no rollback with that id in the store.
var ErrNotFound = errors.New("rollback not found")

// InProgressError says which rollback of a system is already in progress,
// found either in the store or on the target's fence. It matches
// rewind.ErrRollbackInProgress with errors.Is.
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

// Unwrap makes errors.Is(err, rewind.ErrRollbackInProgress) hold.
func (e *InProgressError) Unwrap() error { return rewind.ErrRollbackInProgress }
