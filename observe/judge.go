package observe

import (
	"math"
	"strconv"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
)

// judgeCounts evaluates the judge form: a statistical test on request counts
// (proportion) or histogram buckets (latency). Its outcome separates the
// seed's measure from the evidence (decide.Assess): worse by the point
// estimate and significant is true, worse but not (yet) significant is
// unproven, not worse is false. A test that cannot reach significance with
// these counts is no data, never a rollback. A sequential judge reads only
// the point estimate from its windows, and the interval's counts (Step)
// from which decide accumulates its evidence.
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
		if j.Sequential {
			r = judge.LatencyEstimate(c, b, j.Quantile, opts)
		} else {
			r = judge.Latency(c, b, j.Quantile, opts)
		}
		o.Canary, o.Baseline = finite(judge.Quantile(c, j.Quantile)), finite(judge.Quantile(b, j.Quantile))
	default:
		c, ok := q.counts("canary", j.Canary, o)
		if !ok {
			return
		}
		switch {
		case j.Above != nil && j.Sequential:
			r = judge.ProportionAboveEstimate(c, *j.Above, opts)
		case j.Above != nil:
			r = judge.ProportionAbove(c, *j.Above, opts)
		default:
			b, ok := q.counts("baseline", j.Baseline, o)
			if !ok {
				return
			}
			if j.Sequential {
				r = judge.ProportionEstimate(c, b, opts)
			} else {
				r = judge.Proportion(c, b, opts)
			}
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
	case r.Worse:
		o.Outcome = rewind.OutcomeUnproven
	default:
		o.Outcome = rewind.OutcomeFalse
	}
	if j.Sequential && !r.Insufficient {
		o.Judge.Sequential = true
		step(q, j, r, o)
	}
}

// step reads a sequential judge's interval counts into o.Step; a failed
// query makes the observation an error, as any other.
func step(q *querier, j *policy.Judge, r judge.Result, o *rewind.Observation) {
	s := &rewind.Step{}
	if j.Test == "latency" {
		if !q.stepBuckets("canary", j.Canary.BucketsStep, &s.Canary, o) || !q.stepBuckets("baseline", j.Baseline.BucketsStep, &s.Baseline, o) {
			return
		}
		if !math.IsNaN(r.TailBound) {
			s.Bound = r.TailBound
		}
		o.Step = s
		return
	}
	if !q.stepCounts("canary", j.Canary, &s.Canary, o) {
		return
	}
	if j.Above == nil && !q.stepCounts("baseline", j.Baseline, &s.Baseline, o) {
		return
	}
	o.Step = s
}

// stepCounts reads one side's interval counts: empty results are zero
// (no series changed, or none reset-free); a failed query is an error; NaN
// or ±Inf leaves the interval uncounted (false, the outcome kept).
func (q *querier) stepCounts(side string, jq policy.JudgeQueries, into *rewind.StepCounts, o *rewind.Observation) bool {
	for _, part := range []struct {
		name, promql string
		v            *float64
	}{{" interval total", jq.TotalStep, &into.Total}, {" interval bad", jq.BadStep, &into.Bad}} {
		v, r, ok, err := q.scalar(side+part.name, part.promql)
		o.Readings = append(o.Readings, r)
		switch {
		case err != nil:
			o.Outcome, o.Reason = rewind.OutcomeError, err.Error()
			return false
		case !ok && r.Series > 0:
			return false
		case ok:
			*part.v = v
		}
	}
	return true
}

// stepBuckets reads one side's interval histogram.
func (q *querier) stepBuckets(side, promql string, into *rewind.StepCounts, o *rewind.Observation) bool {
	outcome, reason := o.Outcome, o.Reason
	bs, ok := q.buckets(side+" interval", promql, o)
	if !ok {
		if o.Outcome == rewind.OutcomeNoData { // no bucket changed: an empty interval
			o.Outcome, o.Reason = outcome, reason
			return true
		}
		return false
	}
	into.Le, into.Cum = judge.Cumulative(bs)
	return true
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
