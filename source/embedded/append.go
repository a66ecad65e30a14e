package embedded

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Appender batches live samples; they become visible to queries together at
// Commit. After Commit or Rollback the Appender starts a new batch, so one
// Appender can serve a whole scrape loop. An Appender is not safe for
// concurrent use: use one per goroutine.
//
// Within a series, samples must be appended in time order, across batches
// and within one: Append rejects a sample not newer than the series' last
// sample of the batch (storage.ErrOutOfOrderSample, or
// storage.ErrDuplicateSampleForTimestamp for an equal timestamp), or older
// than the series' last committed sample.
type Appender struct {
	db    *DB
	batch []pending
	last  map[uint64]lastSample
	lb    *labels.Builder
}

// pending is one sample of a batch.
type pending struct {
	lset labels.Labels
	hash uint64
	t    int64
	v    float64
}

// lastSample is the newest sample of a series in the current batch.
type lastSample struct {
	lset labels.Labels
	t    int64
}

// Appender returns a new, empty batch. ctx is not used: a batch only
// touches memory.
func (db *DB) Appender(_ context.Context) *Appender {
	return &Appender{
		db:   db,
		last: map[uint64]lastSample{},
		lb:   labels.NewBuilder(labels.EmptyLabels()),
	}
}

// Append adds one float sample of the series named by lbls ("__name__" is
// the metric name; labels with empty values are dropped). t is truncated to
// milliseconds. The sample is visible to queries after Commit.
func (a *Appender) Append(lbls map[string]string, t time.Time, v float64) error {
	a.lb.Reset(labels.EmptyLabels())
	for n, val := range lbls {
		a.lb.Set(n, val)
	}
	lset := a.lb.Labels()
	if err := validLabels(lset); err != nil {
		return fmt.Errorf("embedded: append: %w", err)
	}
	return a.add(lset, t.UnixMilli(), v)
}

// add appends one sample of a validated series.
func (a *Appender) add(lset labels.Labels, ts int64, v float64) error {
	if ts < -maxAbsTimestamp || ts > maxAbsTimestamp {
		return fmt.Errorf("embedded: append %s: timestamp %d ms out of range", lset, ts)
	}
	h := lset.Hash()
	prev, seen := a.last[h]
	if seen && labels.Equal(prev.lset, lset) {
		switch {
		case ts == prev.t:
			return fmt.Errorf("embedded: append %s at %s: %w", lset, fromMillis(ts), storage.ErrDuplicateSampleForTimestamp)
		case ts < prev.t:
			return fmt.Errorf("embedded: append %s at %s: %w", lset, fromMillis(ts), storage.ErrOutOfOrderSample)
		}
	}

	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if a.db.closed {
		return ErrClosed
	}
	m := a.db.store
	m.mu.RLock()
	s := m.get(lset, h)
	var err error
	if s != nil && ts < s.lastT {
		err = storage.ErrOutOfOrderSample
	}
	m.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("embedded: append %s at %s: %w", lset, fromMillis(ts), err)
	}
	a.batch = append(a.batch, pending{lset: lset, hash: h, t: ts, v: v})
	if !seen || labels.Equal(prev.lset, lset) { // on a hash collision, track the first series only
		a.last[h] = lastSample{lset: lset, t: ts}
	}
	return nil
}

// Commit makes the batch's samples visible to queries and starts a new
// batch. A sample that another Appender's commit has overtaken in the
// meantime is not added, and Commit says so.
func (a *Appender) Commit() error {
	batch := a.reset()
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if a.db.closed {
		return ErrClosed
	}
	m := a.db.store
	m.mu.Lock()
	defer m.mu.Unlock()
	var first error
	for _, p := range batch {
		if err := m.add(p.lset, p.hash, p.t, p.v); err != nil && first == nil {
			first = fmt.Errorf("embedded: commit %s at %s: %w", p.lset, fromMillis(p.t), err)
		}
	}
	return first
}

// Rollback discards the batch's samples and starts a new batch.
func (a *Appender) Rollback() error {
	a.reset()
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if a.db.closed {
		return ErrClosed
	}
	return nil
}

func (a *Appender) reset() []pending {
	b := a.batch
	a.batch = nil
	clear(a.last)
	return b
}
