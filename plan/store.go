package plan

import rewind "github.com/rewind-sre/rewind"

// The store's role interface and types live in the root package (see
// rewind.RollbackStore); these names stay for the code that uses them.
type (
	// Store is the durable home of rollbacks and their journal.
	Store = rewind.RollbackStore
	// JournalEntry is one append-only line of a rollback's journal.
	JournalEntry = rewind.JournalEntry
	// ListOptions filter Store.List.
	ListOptions = rewind.ListOptions
	// InProgressError says which rollback of a system is already in progress.
	InProgressError = rewind.InProgressError
)

// ErrNotFound: no rollback with that id in the store.
var ErrNotFound = rewind.ErrRollbackNotFound
