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
// storage.ErrDuplicateSampleForTimestamp for an equal timestamp), and the
// head rejects one older than the series' last committed sample.
type Appender struct {
	db   *DB
	ctx  context.Context
	app  storage.Appender // nil until the batch's first sample
	last map[uint64]lastSample
	lb   *labels.Builder
}

// lastSample is the newest sample of a series in the current batch.
type lastSample struct {
	lset labels.Labels
	t    int64
}

// Appender returns a new, empty batch.
func (db *DB) Appender(ctx context.Context) *Appender {
	return &Appender{
		db:   db,
		ctx:  ctx,
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
		// The head would silently drop such a sample at Commit; refuse it now.
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
	if a.app == nil {
		a.app = a.db.head.Appender(a.ctx)
	}
	if _, err := a.app.Append(0, lset, ts, v); err != nil {
		return fmt.Errorf("embedded: append %s at %s: %w", lset, fromMillis(ts), err)
	}
	if !seen || labels.Equal(prev.lset, lset) { // on a hash collision, track the first series only
		a.last[h] = lastSample{lset: lset, t: ts}
	}
	return nil
}

// Commit makes the batch's samples visible to queries and starts a new batch.
func (a *Appender) Commit() error {
	return a.finish(storage.Appender.Commit)
}

// Rollback discards the batch's samples and starts a new batch.
func (a *Appender) Rollback() error {
	return a.finish(storage.Appender.Rollback)
}

func (a *Appender) finish(f func(storage.Appender) error) error {
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	app := a.app
	a.app = nil
	clear(a.last)
	if a.db.closed {
		return ErrClosed
	}
	if app == nil {
		return nil
	}
	if err := f(app); err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	return nil
}
