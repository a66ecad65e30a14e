package judge

import (
	"fmt"
	"math"

	"github.com/rewind-sre/rewind"
)

// Test names, as carried in Result.Test and rewind.Judgement.Test.
const (
	ProportionTest      = "proportion"       // two-sample: canary vs baseline
	ProportionAboveTest = "proportion-above" // one-sample: canary vs a fixed proportion
	LatencyTest         = "latency"          // histogram buckets: canary vs baseline
)

// Direction says which way a change is worse.
type Direction string

const (
	// Increase: a higher canary value is worse (error counts, latency).
	// The zero Direction means Increase.
	Increase Direction = "increase"
	// Decrease: a lower canary value is worse (throughput-like "good" counts).
	Decrease Direction = "decrease"
)

// Counts is a number of bad (or, with Decrease, good) requests out of a total.
// Inputs are float64 as PromQL increase() returns them; they are rounded to
// the nearest integer before testing.
type Counts struct {
	Bad   float64 `json:"bad"`
	Total float64 `json:"total"`
}

// Options are the parameters shared by every test.
type Options struct {
	// Alpha is the one-sided significance level, in (0, 0.5].
	Alpha float64
	// MinEffect is the factor toward worse that the effect's point estimate
	// must reach: with Increase the canary at least MinEffect × the
	// baseline, with Decrease at most baseline / MinEffect. 0 means 1
	// (significance alone); a value in (0, 1) is read as its reciprocal, so
	// 0.5 and 2 both mean "a two-fold change toward worse".
	MinEffect float64
	// Direction defaults to Increase. Latency supports Increase only.
	Direction Direction
	// MinRequests is the number of canary requests below which the result
	// is insufficient whatever the counts say; 0 means 1.
	MinRequests float64
}

// Result is the outcome of one test. Holds and Insufficient are never both
// true. Float fields that do not apply are NaN.
type Result struct {
	Test         string
	Holds        bool // worse, and significant at Alpha
	Insufficient bool // too few requests (or invalid input) to decide; see Detail
	// Worse is the seed's own measure, without statistics: the point
	// estimate of the effect, computed from the counts as given (not
	// rounded), is strictly past MinEffect (proportion, latency) or the
	// canary's share strictly past Above: exactly the seed's condition on
	// the same windows, e.g. canary > baseline × 1.5. It is what a trigger's
	// hold time measures; Holds adds the evidence. False when Insufficient.
	Worse bool

	// PValue is the one-sided p-value toward worse (for latency, the
	// Bonferroni-adjusted minimum of the rank and tail tests); in [0, 1].
	PValue float64
	Alpha  float64
	// Effect is canary / baseline (proportion: ratio of proportions;
	// latency: ratio of interpolated quantiles; proportion-above: the
	// canary proportion itself). EffectLow and EffectHigh bound it at
	// confidence 1 − 2·Alpha. EffectHigh may be +Inf (zero-error baseline).
	Effect, EffectLow, EffectHigh float64
	// MinEffect is the normalized factor (≥ 1) that the effect had to reach.
	MinEffect float64

	// Canary and Baseline are the integer counts tested. For latency, Bad
	// is the number of requests above TailBound.
	Canary, Baseline Counts
	Above            float64 // proportion-above: the threshold
	Quantile         float64 // latency: q
	TailBound        float64 // latency: the baseline's q-quantile bucket bound (+Inf: no tail test)
	RankP, TailP     float64 // latency: unadjusted one-sided p-values of the two component tests

	// Needed is, for an insufficient result, the number of canary requests
	// that the window would need for this test to be able to decide (see
	// the package documentation); 0 when not computed, +Inf when no count
	// up to 2^53 suffices or the baseline is missing.
	Needed float64
	Detail string
}

func newResult(test string, o Options) Result {
	nan := math.NaN()
	return Result{
		Test: test, PValue: 1, Alpha: o.Alpha,
		Effect: nan, EffectLow: nan, EffectHigh: nan, MinEffect: nan,
		Canary: Counts{nan, nan}, Baseline: Counts{nan, nan},
		Above: nan, Quantile: nan, TailBound: nan, RankP: nan, TailP: nan,
	}
}

// insufficient marks r insufficient with a reason.
func (r Result) insufficient(reason string) Result {
	r.Holds, r.Insufficient = false, true
	r.Detail = reason
	return r
}

// maxCount is the largest count tested: float64 holds every integer up to it.
const maxCount = 1 << 53

// Validate reports the first invalid option, for checking a policy at load
// time; the tests themselves return an insufficient Result instead.
func (o Options) Validate() error {
	_, err := o.effectFactor()
	return err
}

// effectFactor validates o and returns the normalized MinEffect (≥ 1).
func (o Options) effectFactor() (float64, error) {
	switch {
	case math.IsNaN(o.Alpha) || o.Alpha <= 0 || o.Alpha > 0.5:
		return 0, fmt.Errorf("alpha %v is not in (0, 0.5]", o.Alpha)
	case o.Direction != "" && o.Direction != Increase && o.Direction != Decrease:
		return 0, fmt.Errorf("direction %q is neither increase nor decrease", o.Direction)
	case math.IsNaN(o.MinRequests) || o.MinRequests < 0 || o.MinRequests > maxCount:
		return 0, fmt.Errorf("minRequests %v is not a count", o.MinRequests)
	case math.IsNaN(o.MinEffect) || math.IsInf(o.MinEffect, 0) || o.MinEffect < 0:
		return 0, fmt.Errorf("minEffect %v is not a finite positive factor", o.MinEffect)
	case o.MinEffect == 0:
		return 1, nil
	case o.MinEffect < 1:
		return 1 / o.MinEffect, nil
	}
	return o.MinEffect, nil
}

func (o Options) increase() bool { return o.Direction != Decrease }

func (o Options) minRequests() float64 { return max(1, math.Ceil(o.MinRequests)) }

// integers rounds c to the counts tested: NaN, ±Inf or negative values are
// errors; Bad is clamped to Total (extrapolated increase() may overshoot).
func (c Counts) integers(side string) (Counts, error) {
	for _, v := range []float64{c.Bad, c.Total} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return c, fmt.Errorf("%s counts are not finite (bad %v, total %v)", side, c.Bad, c.Total)
		}
	}
	bad, total := math.Round(c.Bad), math.Round(c.Total)
	switch {
	case bad < 0 || total < 0:
		return c, fmt.Errorf("%s counts are negative (bad %v, total %v)", side, c.Bad, c.Total)
	case total > maxCount:
		return c, fmt.Errorf("%s total %v exceeds 2^53", side, c.Total)
	}
	return Counts{Bad: min(bad, total), Total: total}, nil
}

// Judgement converts r to the evidence record of a judge-form trigger.
// Non-finite values (an unbounded EffectHigh, an undefined Effect) are left
// out, since JSON cannot carry them; Detail still states them.
func (r Result) Judgement() *rewind.Judgement {
	j := &rewind.Judgement{
		Test:       r.Test,
		PValue:     finiteOr(r.PValue, 1),
		Alpha:      r.Alpha,
		Effect:     finitePtr(r.Effect),
		EffectLow:  finitePtr(r.EffectLow),
		EffectHigh: finitePtr(r.EffectHigh),
		MinEffect:  finiteOr(r.MinEffect, 0),
		Counts:     map[string]float64{},
		Detail:     r.Detail,
	}
	if r.Needed > 0 {
		j.Needed = finitePtr(r.Needed)
	}
	put := func(k string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			j.Counts[k] = v
		}
	}
	switch r.Test {
	case LatencyTest:
		put("canaryTotal", r.Canary.Total)
		put("baselineTotal", r.Baseline.Total)
		put("canaryAboveBound", r.Canary.Bad)
		put("baselineAboveBound", r.Baseline.Bad)
		put("tailBound", r.TailBound)
		put("quantile", r.Quantile)
	default:
		put("canaryBad", r.Canary.Bad)
		put("canaryTotal", r.Canary.Total)
		put("baselineBad", r.Baseline.Bad)
		put("baselineTotal", r.Baseline.Total)
		put("above", r.Above)
	}
	if len(j.Counts) == 0 {
		j.Counts = nil
	}
	return j
}

func finiteOr(v, or float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return or
	}
	return v
}

func finitePtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return rewind.Float(v)
}

// ratio is a / b for non-negative a, b: +Inf for a > 0 = b, NaN for 0 / 0.
func ratio(a, b float64) float64 {
	switch {
	case b > 0:
		return a / b
	case a > 0:
		return math.Inf(1)
	}
	return math.NaN()
}
