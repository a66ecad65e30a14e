package backtest

import (
	"context"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// lazyRange answers instant queries on a grid (grid0 + k·step) from range
// queries run the first time a query is asked for in a chunk of the grid:
// a replay whose queries are known only as it goes (a rollout watch changes
// phase; peers are read only when a trigger holds) still reads each query
// once per chunk. Instants off the grid, and sources that answer no range
// queries, go to the source directly.
type lazyRange struct {
	src   rewind.Source
	rs    rewind.RangeSource
	grid0 time.Time
	step  time.Duration
	chunk int
	end   time.Time // no range query reaches past it

	mu    sync.Mutex
	cache map[lazyKey]*rangeResult
}

type lazyKey struct {
	query string
	chunk int64
}

func newLazyRange(src rewind.Source, grid0, end time.Time, step time.Duration, chunk int) *lazyRange {
	rs, _ := src.(rewind.RangeSource)
	return &lazyRange{src: src, rs: rs, grid0: grid0, end: end, step: step, chunk: chunk, cache: map[lazyKey]*rangeResult{}}
}

var _ rewind.Source = (*lazyRange)(nil)

func (l *lazyRange) Query(ctx context.Context, q string, at time.Time) (rewind.Vector, error) {
	off := at.Sub(l.grid0)
	if l.rs == nil || off < 0 || off%l.step != 0 || at.After(l.end) {
		return l.src.Query(ctx, q, at)
	}
	k := lazyKey{q, int64(off/l.step) / int64(l.chunk)}
	l.mu.Lock()
	r, ok := l.cache[k]
	l.mu.Unlock()
	if !ok {
		start := l.grid0.Add(time.Duration(k.chunk*int64(l.chunk)) * l.step)
		end := start.Add(time.Duration(l.chunk-1) * l.step)
		if end.After(l.end) {
			end = l.end
		}
		m, err := l.rs.QueryRange(ctx, q, start, end, l.step)
		r = &rangeResult{err: err, at: map[int64]rewind.Vector{}}
		for _, s := range m {
			for _, p := range s.Points {
				ms := p.T.UnixMilli()
				r.at[ms] = append(r.at[ms], rewind.Sample{Labels: s.Labels, T: p.T, V: p.V})
			}
		}
		if ctx.Err() == nil { // a cancelled fetch is not an answer to keep
			l.mu.Lock()
			l.cache[k] = r
			l.mu.Unlock()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.at[at.UnixMilli()], nil
}

// forget drops the cached answers of chunks before the one holding `at`.
func (l *lazyRange) forget(at time.Time) {
	c := int64(at.Sub(l.grid0)/l.step) / int64(l.chunk)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.cache {
		if k.chunk < c {
			delete(l.cache, k)
		}
	}
}
