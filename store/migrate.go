// Package store holds what is common to Rewind's stores (store/sqlite,
// store/kubernetes): moving the whole state from one to another, so that an
// upgrade from the embedded store to the cluster's loses nothing.
package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Importer is a store that takes a rollback with its journal as they are.
type Importer interface {
	rewind.Store
	// Import stores rb and its journal unless a rollback with its id is
	// stored already (imported false).
	Import(ctx context.Context, rb *rewind.Rollback, journal []rewind.JournalEntry) (imported bool, err error)
}

// Report counts what Migrate moved and what the target already had.
type Report struct {
	Rollbacks, RollbacksKept int // imported; already in the target
	Notices, NoticesKept     int // enqueued; already in the target (same key)
}

func (r Report) String() string {
	return fmt.Sprintf("%d rollbacks imported (%d already there), %d notices imported (%d already there)",
		r.Rollbacks, r.RollbacksKept, r.Notices, r.NoticesKept)
}

// noticeBatch bounds one Enqueue of Migrate.
const noticeBatch = 100

// Migrate copies every rollback (oldest first, with its journal) and every
// notice (in order, with its state: pending ones are delivered by the
// target's outbox, settled ones keep deduplicating) from one store to
// another. It is safe to run again: what the target has is left alone.
// Run it while no process writes to from.
func Migrate(ctx context.Context, from rewind.Store, to Importer) (Report, error) {
	var rep Report
	rbs, err := from.List(ctx, rewind.ListOptions{})
	if err != nil {
		return rep, fmt.Errorf("migrate: listing rollbacks: %w", err)
	}
	slices.Reverse(rbs) // oldest first
	for _, rb := range rbs {
		j, err := from.Journal(ctx, rb.ID)
		if err != nil {
			return rep, fmt.Errorf("migrate: reading the journal of %s: %w", rb.ID, err)
		}
		ok, err := to.Import(ctx, rb, j)
		if err != nil {
			return rep, fmt.Errorf("migrate: %w", err)
		}
		if ok {
			rep.Rollbacks++
		} else {
			rep.RollbacksKept++
		}
	}
	ns, err := from.Notices(ctx, rewind.NoticeFilter{})
	if err != nil {
		return rep, fmt.Errorf("migrate: reading the outbox: %w", err)
	}
	for batch := range slices.Chunk(ns, noticeBatch) {
		for i := range batch {
			batch[i].ID, batch[i].ClaimedBy, batch[i].ClaimedUntil = 0, "", time.Time{}
		}
		added, err := to.Enqueue(ctx, batch)
		if err != nil {
			return rep, fmt.Errorf("migrate: enqueueing notices: %w", err)
		}
		rep.Notices += added
		rep.NoticesKept += len(batch) - added
	}
	return rep, nil
}
