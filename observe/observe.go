// Package observe runs one evaluation cycle of a system against a metrics
// Source: it resolves each trigger's queries at one instant and turns the
// results into Observations for the decision state machine. Every series of
// a result is read; no data, NaN and ±Inf are never read as values.
package observe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// DefaultConcurrency bounds the queries in flight for one system.
const DefaultConcurrency = 8

// Cycle evaluates every trigger of sys at instant at; the i-th observation
// belongs to sys.Triggers[i]. It first runs every distinct PromQL string of
// the system once, concurrently (at most limit at a time; DefaultConcurrency
// when limit <= 0; sequentially when limit is 1, for in-memory sources), then
// evaluates the triggers from those results without further I/O. It is the
// reference that a Batch's grouped evaluation must equal.
func Cycle(ctx context.Context, src rewind.Source, sys *policy.System, at time.Time, limit int) []rewind.Observation {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	q := fetch(ctx, src, sys.Queries(), at, limit)
	return evaluate(ctx, q, sys, at, limit)
}

// evaluate turns the answers of one cycle into the observations of sys;
// only probes do I/O of their own, at most limit at a time.
func evaluate(ctx context.Context, q *querier, sys *policy.System, at time.Time, limit int) []rewind.Observation {
	guard := q.traffic(sys.Traffic)
	out := make([]rewind.Observation, len(sys.Triggers))
	var probes []int
	for i, t := range sys.Triggers {
		o := &out[i]
		o.Trigger, o.At = t.Name, at
		if t.Guarded && guard.outcome != "" {
			o.Outcome, o.Reason, o.Readings = guard.outcome, guard.reason, []rewind.Reading{guard.reading}
			continue
		}
		if t.Form == policy.FormProbe {
			probes = append(probes, i)
			continue
		}
		observe(q, t, o)
	}
	if len(probes) == 0 {
		return out
	}
	// Probes are I/O of their own: concurrently, bounded by their timeouts.
	var g errgroup.Group
	g.SetLimit(max(limit, 1))
	for _, i := range probes {
		g.Go(func() error {
			defer func() {
				if p := recover(); p != nil {
					out[i].Outcome, out[i].Reason = rewind.OutcomeError, fmt.Sprintf("probe: %v: %v", ErrPanic, p)
				}
			}()
			probe(ctx, sys.Triggers[i], at, &out[i])
			return nil
		})
	}
	_ = g.Wait()
	return out
}

func observe(q *querier, t *policy.Trigger, o *rewind.Observation) {
	switch t.Form {
	case policy.FormQuery, policy.FormExplicit:
		compare(q, t, o)
	case policy.FormExpr:
		alert(q, t, o)
	case policy.FormJudge:
		judgeCounts(q, t, o)
	default:
		o.Outcome, o.Reason = rewind.OutcomeError, fmt.Sprintf("unknown trigger form %q", t.Form)
	}
}

// result is one query's answer.
type result struct {
	vec rewind.Vector
	err error
}

// querier holds the answers of one cycle's queries, keyed by PromQL.
type querier struct {
	at      time.Time
	results map[string]result
}

func fetch(ctx context.Context, src rewind.Source, queries []string, at time.Time, limit int) *querier {
	q := &querier{at: at, results: make(map[string]result, len(queries))}
	if limit == 1 {
		for _, promql := range queries {
			vec, err, _ := query(ctx, src, promql, at)
			q.results[promql] = result{vec, err}
		}
		return q
	}
	res := make([]result, len(queries))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, promql := range queries {
		g.Go(func() error {
			res[i].vec, res[i].err, _ = query(ctx, src, promql, at)
			return nil
		})
	}
	_ = g.Wait()
	for i, promql := range queries {
		q.results[promql] = res[i]
	}
	return q
}

// ErrPanic marks a query or a probe that panicked: a failed query
// (degraded), never a crash.
var ErrPanic = errors.New("internal error: panicked")

// query asks src, turning a panic into a failed query; panicked describes
// it (with the stack) for the caller's log.
func query(ctx context.Context, src rewind.Source, promql string, at time.Time) (vec rewind.Vector, err error, panicked string) {
	defer func() {
		if p := recover(); p != nil {
			vec, err = nil, fmt.Errorf("%w: %w: %v", rewind.ErrQuery, ErrPanic, p)
			panicked = fmt.Sprintf("query %s: %v\n%s", promql, p, debug.Stack())
		}
	}()
	vec, err = src.Query(ctx, promql, at)
	return vec, err, ""
}

func (q *querier) query(promql string) (rewind.Vector, error) {
	r, ok := q.results[promql]
	if !ok {
		return nil, fmt.Errorf("%w: %s was not fetched this cycle", rewind.ErrQuery, promql)
	}
	return r.vec, r.err
}

// scalar reads a query that must yield exactly one series.
// ok=false with err=nil means no data (empty, NaN or ±Inf).
func (q *querier) scalar(side, promql string) (v float64, r rewind.Reading, ok bool, err error) {
	r = rewind.Reading{Side: side, Query: promql, At: q.at}
	vec, err := q.query(promql)
	if err != nil {
		r.Error = err.Error()
		return 0, r, false, err
	}
	r.Series = len(vec)
	switch {
	case len(vec) == 0:
		return 0, r, false, nil
	case len(vec) > 1:
		err = fmt.Errorf("%s query returned %d series, not one: aggregate it in the policy (e.g. sum(...)): %s", side, len(vec), promql)
		r.Error = err.Error()
		return 0, r, false, err
	}
	v = vec[0].V
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, r, false, nil
	}
	r.Value = rewind.Float(v)
	return v, r, true, nil
}

type guardResult struct {
	outcome rewind.Outcome // "" when the guard passes
	reason  string
	reading rewind.Reading
}

func (q *querier) traffic(t *policy.Traffic) guardResult {
	if t == nil {
		return guardResult{}
	}
	v, r, ok, err := q.scalar("traffic", t.Query)
	switch {
	case err != nil:
		return guardResult{rewind.OutcomeError, "traffic guard: " + err.Error(), r}
	case !ok:
		return guardResult{rewind.OutcomeNoData, "no canary traffic data", r}
	case v < t.AtLeast:
		return guardResult{rewind.OutcomeNoData, fmt.Sprintf("canary traffic %.3g req/s is below traffic.atLeast %.3g", v, t.AtLeast), r}
	}
	return guardResult{}
}

// compare evaluates the query and explicit forms: one value per side, then the condition.
func compare(q *querier, t *policy.Trigger, o *rewind.Observation) {
	c, rc, okC, err := q.scalar("canary", t.Canary)
	o.Readings = make([]rewind.Reading, 1, 2)
	o.Readings[0] = rc
	if err != nil {
		o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
		return
	}
	var b float64
	okB := true
	if t.Baseline != "" {
		var rb rewind.Reading
		b, rb, okB, err = q.scalar("baseline", t.Baseline)
		o.Readings = append(o.Readings, rb)
		if err != nil {
			o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
			return
		}
		if okB {
			o.Baseline = rewind.Float(b)
		}
	}
	if okC {
		o.Canary = rewind.Float(c)
	}
	switch {
	case !okC:
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason("canary", rc)
		return
	case !okB:
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason("baseline", o.Readings[1])
		return
	}
	holds, err := t.Holds(c, b)
	switch {
	case err != nil:
		o.Outcome, o.Reason = rewind.OutcomeError, "condition: "+err.Error()
	case holds:
		o.Outcome, o.Reason = rewind.OutcomeTrue, t.Condition
	default:
		o.Outcome = rewind.OutcomeFalse
	}
}

func noDataReason(side string, r rewind.Reading) string {
	if r.Series == 0 {
		return side + " query returned no series"
	}
	return side + " value is NaN or infinite"
}

// alert evaluates the alert form: it holds while the expression returns a sample.
func alert(q *querier, t *policy.Trigger, o *rewind.Observation) {
	promql := t.Expr
	if t.Alert != nil {
		promql = t.Alert.Vector
	}
	vec, err := q.query(promql)
	r := rewind.Reading{Side: "expr", Query: promql, At: q.at, Series: len(vec)}
	if err != nil {
		r.Error = err.Error()
		o.Readings = append(o.Readings, r)
		o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
		return
	}
	if t.Alert == nil { // not split: an empty result is "condition false"
		unsplit(vec, r, o)
		return
	}
	worst, valid, kept := math.NaN(), 0, 0
	for _, s := range vec {
		if !rewind.IsFinite(s.V) { // NaN and ±Inf are no data, never "above the threshold"
			continue
		}
		valid++
		if t.Alert.Keep(s.V) {
			kept++
		}
		if math.IsNaN(worst) || worse(t.Alert.Op, s.V, worst) {
			worst = s.V
		}
	}
	if valid > 0 {
		r.Value = rewind.Float(worst)
		o.Canary = rewind.Float(worst)
	}
	o.Readings = append(o.Readings, r)
	switch {
	case valid == 0:
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason("expr", r)
	case kept > 0:
		o.Outcome, o.Reason = rewind.OutcomeTrue, fmt.Sprintf("%d of %d series %s %g", kept, valid, t.Alert.Op, t.Alert.Threshold)
	default:
		o.Outcome = rewind.OutcomeFalse
	}
}

// unsplit evaluates an alert expression that is not `VECTOR OP NUMBER`: it
// holds while a finite sample comes back. Samples that are all NaN or ±Inf
// are no data; the value shown is the largest finite one, so that it does
// not depend on the order of the series.
func unsplit(vec rewind.Vector, r rewind.Reading, o *rewind.Observation) {
	o.Outcome = rewind.OutcomeFalse
	top, valid := math.Inf(-1), 0
	for _, s := range vec {
		if rewind.IsFinite(s.V) {
			valid++
			top = max(top, s.V)
		}
	}
	switch {
	case valid > 0:
		o.Outcome, o.Reason, o.Canary = rewind.OutcomeTrue, fmt.Sprintf("%d series match", valid), rewind.Float(top)
		r.Value = o.Canary
	case len(vec) > 0:
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason("expr", r)
	}
	o.Readings = append(o.Readings, r)
}

// worse reports whether v is further on the alerting side of op than w.
func worse(op string, v, w float64) bool {
	if op == "<" || op == "<=" {
		return v < w
	}
	return v > w
}
