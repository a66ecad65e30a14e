package backtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
)

// window serves instant queries at start, start+step, ... from range queries
// run once per distinct PromQL string. A range query's error is the error of
// every instant it covers: those evaluations are degraded, never values.
type window struct {
	mu      sync.Mutex
	results map[string]*rangeResult
}

type rangeResult struct {
	at  map[int64]rewind.Vector // unix milliseconds → samples
	err error
}

var _ rewind.Source = (*window)(nil)

// prefetch runs every query as a range query over [start, end] at step.
func prefetch(ctx context.Context, rs rewind.RangeSource, queries []string, start, end time.Time, step time.Duration, limit int) *window {
	w := &window{results: make(map[string]*rangeResult, len(queries))}
	var g errgroup.Group
	g.SetLimit(limit)
	for _, q := range queries {
		g.Go(func() error {
			m, err := rs.QueryRange(ctx, q, start, end, step)
			r := &rangeResult{err: err, at: map[int64]rewind.Vector{}}
			for _, s := range m {
				for _, p := range s.Points {
					ms := p.T.UnixMilli()
					r.at[ms] = append(r.at[ms], rewind.Sample{Labels: s.Labels, T: p.T, V: p.V})
				}
			}
			w.mu.Lock()
			w.results[q] = r
			w.mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return w
}

func (w *window) Query(_ context.Context, q string, at time.Time) (rewind.Vector, error) {
	w.mu.Lock()
	r, ok := w.results[q]
	w.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s was not prefetched", rewind.ErrQuery, q)
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.at[at.UnixMilli()], nil
}
