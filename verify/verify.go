// Package verify holds the rollback plan's metric-based steps: the drain's
// confirmation (the canary's request rate falls), the baseline check during
// the rollback, and the post-rollback validator with its before/after
// comparison. Each reads the system's metrics Source and changes nothing.
package verify

import (
	"context"
	"fmt"
	"math"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// defaultPoll is how often a waiting step re-reads its query.
const defaultPoll = 2 * time.Second

// value reads a query that must give one finite value now.
func value(ctx context.Context, src rewind.Source, query string, at time.Time) (float64, error) {
	vec, err := src.Query(ctx, query, at)
	switch {
	case err != nil:
		return 0, err
	case len(vec) == 0:
		return 0, errNoData
	case len(vec) > 1:
		return 0, fmt.Errorf("%d series, not one: aggregate the query (e.g. sum(...))", len(vec))
	case math.IsNaN(vec[0].V) || math.IsInf(vec[0].V, 0):
		return 0, errNoData
	}
	return vec[0].V, nil
}

var errNoData = fmt.Errorf("no data")

// waitFor polls check every poll until it reports done, ctx ends or within
// passes; it returns how long it waited and the last error of check.
func waitFor(ctx context.Context, now func() time.Time, within, poll time.Duration, check func(at time.Time) (done bool, err error)) (time.Duration, bool, error) {
	start := now()
	deadline := start.Add(within)
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		at := now()
		done, err := check(at)
		if done {
			return at.Sub(start), true, nil
		}
		last = err
		if !at.Before(deadline) {
			return at.Sub(start), false, last
		}
		select {
		case <-ctx.Done():
			return now().Sub(start), false, ctx.Err()
		case <-t.C:
		}
	}
}

func fmtDur(d time.Duration) string { return d.Round(time.Millisecond).String() }
