package embedded

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/rewind-sre/rewind"
)

// Query evaluates query at the instant at. A vector result is returned with
// every series, a scalar as one sample without labels. Every error wraps
// rewind.ErrQuery; warnings fail the query, info annotations do not (see the
// package documentation).
func (db *DB) Query(ctx context.Context, query string, at time.Time) (rewind.Vector, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, queryErr(query, ErrClosed)
	}
	q, err := db.engine.NewInstantQuery(ctx, storage.QueryableFunc(db.querier), nil, query, at)
	if err != nil {
		return nil, queryErr(query, err)
	}
	defer q.Close()
	val, err := db.exec(ctx, q, query)
	if err != nil {
		return nil, err
	}
	switch v := val.(type) {
	case promql.Vector:
		out := make(rewind.Vector, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				return nil, queryErr(query, errors.New("native histogram samples are not supported"))
			}
			out = append(out, rewind.Sample{Labels: labelMap(s.Metric), T: fromMillis(s.T), V: s.F})
		}
		return out, nil
	case promql.Scalar:
		return rewind.Vector{{T: fromMillis(v.T), V: v.V}}, nil
	case promql.Matrix:
		return nil, queryErr(query, errors.New("instant query returned a range vector; apply a function such as rate() to it"))
	default:
		return nil, queryErr(query, fmt.Errorf("unsupported result type %s", val.Type()))
	}
}

// QueryRange evaluates query at start, start+step, ... <= end: the same
// values as Query at each of those instants. A scalar expression yields one
// series without labels. Errors are as for Query.
func (db *DB) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) (rewind.Matrix, error) {
	if step <= 0 {
		return nil, queryErr(query, fmt.Errorf("step %s is not positive", step))
	}
	if end.Before(start) {
		return nil, queryErr(query, fmt.Errorf("end %s is before start %s", end, start))
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return nil, queryErr(query, ErrClosed)
	}
	q, err := db.engine.NewRangeQuery(ctx, storage.QueryableFunc(db.querier), nil, query, start, end, step)
	if err != nil {
		return nil, queryErr(query, err)
	}
	defer q.Close()
	val, err := db.exec(ctx, q, query)
	if err != nil {
		return nil, err
	}
	m, ok := val.(promql.Matrix)
	if !ok {
		return nil, queryErr(query, fmt.Errorf("unsupported result type %s", val.Type()))
	}
	out := make(rewind.Matrix, 0, len(m))
	for _, s := range m {
		if len(s.Histograms) > 0 {
			return nil, queryErr(query, errors.New("native histogram samples are not supported"))
		}
		pts := make([]rewind.Point, len(s.Floats))
		for i, f := range s.Floats {
			pts[i] = rewind.Point{T: fromMillis(f.T), V: f.F}
		}
		out = append(out, rewind.Series{Labels: labelMap(s.Metric), Points: pts})
	}
	return out, nil
}

// exec runs q and applies the error and annotation policy: warnings fail the
// query, infos do not, and neither does the warning that sort() has no effect
// in a range query (a range query must fail exactly when the instant queries
// at its steps do). The returned value is valid until q is closed.
func (db *DB) exec(ctx context.Context, q promql.Query, query string) (parser.Value, error) {
	res := q.Exec(ctx)
	if res.Err != nil {
		err := res.Err
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", err, cerr) // make errors.Is(err, context.Canceled) work
		}
		return nil, queryErr(query, err)
	}
	var warnings []string
	for _, a := range res.Warnings {
		if errors.Is(a, annotations.PromQLWarning) && !errors.Is(a, annotations.SortInRangeQueryWarning) {
			warnings = append(warnings, a.Error())
		} else {
			db.logger.Debug("PromQL annotation ignored", "query", query, "annotation", a.Error())
		}
	}
	if len(warnings) > 0 {
		sort.Strings(warnings) // annotations are a map: make the message stable
		return nil, queryErr(query, fmt.Errorf("warnings: %s", strings.Join(warnings, "; ")))
	}
	return res.Value, nil
}

// queryErr wraps err with rewind.ErrQuery and the query text.
func queryErr(query string, err error) error {
	return fmt.Errorf("%w: %q: %w", rewind.ErrQuery, query, err)
}

// labelMap converts labels to a map; an empty label set becomes nil.
func labelMap(ls labels.Labels) map[string]string {
	if ls.IsEmpty() {
		return nil
	}
	return ls.Map()
}
