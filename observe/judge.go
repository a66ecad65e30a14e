package observe

import (
	"math"
	"strconv"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
)

// judgeCounts evaluates the judge form: a statistical test on request counts
// (proportion) or histogram buckets (latency). A test that cannot reach
// significance with these counts is no data, never a rollback.
func judgeCounts(q *querier, t *policy.Trigger, o *rewind.Observation) {
	j := t.Judge
	opts := judge.Options{Alpha: j.Alpha, MinEffect: j.MinEffect, Direction: judge.Direction(j.Direction)}
	var r judge.Result
	switch j.Test {
	case "latency":
		c, okC := q.buckets("canary", j.Canary.Buckets, o)
		b, okB := q.buckets("baseline", j.Baseline.Buckets, o)
		if !okC || !okB {
			return
		}
		r = judge.Latency(c, b, j.Quantile, opts)
		o.Canary, o.Baseline = finite(judge.Quantile(c, j.Quantile)), finite(judge.Quantile(b, j.Quantile))
	default:
		c, ok := q.counts("canary", j.Canary, o)
		if !ok {
			return
		}
		if j.Above != nil {
			r = judge.ProportionAbove(c, *j.Above, opts)
		} else {
			b, ok := q.counts("baseline", j.Baseline, o)
			if !ok {
				return
			}
			r = judge.Proportion(c, b, opts)
			o.Baseline = finite(b.Bad / b.Total)
		}
		o.Canary = finite(c.Bad / c.Total)
	}
	o.Judge, o.Reason = r.Judgement(), r.Detail
	switch {
	case r.Insufficient:
		o.Outcome = rewind.OutcomeNoData
	case r.Holds:
		o.Outcome = rewind.OutcomeTrue
	default:
		o.Outcome = rewind.OutcomeFalse
	}
}

// counts reads one side's bad and total counts. An empty bad query with a
// total is zero bad requests (a service that never failed has no 5xx
// series); an empty total is no data.
func (q *querier) counts(side string, jq policy.JudgeQueries, o *rewind.Observation) (judge.Counts, bool) {
	total, rt, okT, err := q.scalar(side+" total", jq.Total)
	o.Readings = append(o.Readings, rt)
	if err != nil {
		o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
		return judge.Counts{}, false
	}
	bad, rb, okB, err := q.scalar(side+" bad", jq.Bad)
	o.Readings = append(o.Readings, rb)
	switch {
	case err != nil:
		o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
		return judge.Counts{}, false
	case !okT:
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason(side+" total", rt)
		return judge.Counts{}, false
	case !okB && rb.Series > 0: // NaN or Inf, not merely absent
		o.Outcome, o.Reason = rewind.OutcomeNoData, noDataReason(side+" bad", rb)
		return judge.Counts{}, false
	case !okB:
		bad = 0
	}
	return judge.Counts{Bad: bad, Total: total}, true
}

// buckets reads one side's cumulative histogram buckets by their le label.
func (q *querier) buckets(side, promql string, o *rewind.Observation) ([]judge.Bucket, bool) {
	r := rewind.Reading{Side: side + " buckets", Query: promql, At: q.at}
	vec, err := q.query(promql)
	r.Series = len(vec)
	if err != nil {
		r.Error = err.Error()
		o.Readings = append(o.Readings, r)
		o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
		return nil, false
	}
	out := make([]judge.Bucket, 0, len(vec))
	total := math.NaN()
	for _, s := range vec {
		le, ok := s.Labels["le"]
		f, perr := strconv.ParseFloat(le, 64)
		if !ok || perr != nil || math.IsNaN(f) {
			r.Error = "a bucket series has no numeric le label: aggregate with sum by (le) (...)"
			o.Readings = append(o.Readings, r)
			o.Outcome, o.Reason = rewind.OutcomeError, side+" buckets: "+r.Error+": "+promql
			return nil, false
		}
		if !rewind.IsFinite(s.V) { // a NaN or ±Inf count: no data, never a test
			r.Value = nil
			o.Readings = append(o.Readings, r)
			o.Outcome, o.Reason = rewind.OutcomeNoData, side+" buckets: a bucket count is NaN or infinite"
			return nil, false
		}
		if math.IsInf(f, 1) {
			total = s.V
		}
		out = append(out, judge.Bucket{Le: f, Count: s.V})
	}
	r.Value = finite(total)
	o.Readings = append(o.Readings, r)
	if len(out) == 0 {
		o.Outcome, o.Reason = rewind.OutcomeNoData, side+" buckets query returned no series"
		return nil, false
	}
	return out, true
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return rewind.Float(v)
}
