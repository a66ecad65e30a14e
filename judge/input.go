package judge

import (
	"fmt"
	"math"
)

// The input of each test, read once for both of its forms: the test with
// its evidence (Proportion, ProportionAbove, Latency) and the point
// estimate of a sequential judge (ProportionEstimate, ...). Each reader
// fills the fields of r it has read and returns ok false, r insufficient
// with the reason, when the input cannot be judged.

// twoSampleInput reads the input of a judgement of the canary's proportion
// against the baseline's: o's effect factor f (r.MinEffect) and the counts
// as integers (r.Canary, r.Baseline).
func twoSampleInput(r *Result, canary, baseline Counts, o Options) (c, b Counts, f float64, ok bool) {
	f, err := o.effectFactor()
	if err != nil {
		*r = r.insufficient("invalid options: " + err.Error())
		return c, b, f, false
	}
	r.MinEffect = f
	if c, err = canary.integers("canary"); err == nil {
		b, err = baseline.integers("baseline")
	}
	if err != nil {
		*r = r.insufficient(err.Error())
		return c, b, f, false
	}
	r.Canary, r.Baseline = c, b
	return c, b, f, true
}

// aboveInput reads the input of a judgement of the canary's proportion
// against the fixed proportion above (r.Above): valid options, above in
// [0, 1], and the canary's counts as integers (r.Canary).
func aboveInput(r *Result, canary Counts, above float64, o Options) (c Counts, ok bool) {
	if _, err := o.effectFactor(); err != nil {
		*r = r.insufficient("invalid options: " + err.Error())
		return c, false
	}
	r.Above = above
	if math.IsNaN(above) || above < 0 || above > 1 {
		*r = r.insufficient(fmt.Sprintf("threshold %v is not a proportion in [0, 1]", above))
		return c, false
	}
	c, err := canary.integers("canary")
	if err != nil {
		*r = r.insufficient(err.Error())
		return c, false
	}
	r.Canary = c
	return c, true
}

// latencyInput reads the input of a judgement of the canary's latency
// against the baseline's: o's effect factor f (r.MinEffect), direction
// Increase, the quantile q in (0, 1) (r.Quantile), and both sides'
// histograms on the bucket bounds they share.
func latencyInput(r *Result, canary, baseline []Bucket, q float64, o Options) (ch, bh hist, f float64, ok bool) {
	f, err := o.effectFactor()
	if err != nil {
		*r = r.insufficient("invalid options: " + err.Error())
		return ch, bh, f, false
	}
	r.MinEffect, r.Quantile = f, q
	switch {
	case !o.increase():
		*r = r.insufficient("the latency test judges direction increase only")
		return ch, bh, f, false
	case math.IsNaN(q) || q <= 0 || q >= 1:
		*r = r.insufficient(fmt.Sprintf("quantile %v is not in (0, 1)", q))
		return ch, bh, f, false
	}
	if ch, bh, err = commonBuckets(canary, baseline); err != nil {
		*r = r.insufficient(err.Error())
		return ch, bh, f, false
	}
	return ch, bh, f, true
}

// fewRequests marks r insufficient, and reports true, when the baseline has
// no request (nb < 1) or the canary's nc requests are fewer than
// o.MinRequests. needed, nil for a point estimate, is the canary request
// count that would be enough: r.Needed (+Inf without a baseline).
func (r *Result) fewRequests(nc, nb float64, o Options, needed func() float64) bool {
	if nb < 1 {
		if needed != nil {
			r.Needed = math.Inf(1)
		}
		*r = r.insufficient("baseline has no requests")
		return true
	}
	return r.fewCanary(nc, o, needed)
}

// fewCanary is fewRequests of a test without a baseline.
func (r *Result) fewCanary(nc float64, o Options, needed func() float64) bool {
	if nc >= o.minRequests() {
		return false
	}
	if needed != nil {
		r.Needed = needed()
	}
	*r = r.insufficient(newText().tooFew(nc, o.minRequests(), r.Needed).String())
	return true
}

// badShare is the proportion of bad requests in counts as given (bad capped
// at the total): the seed's measure reads the counts, not their integers.
func badShare(c Counts) float64 { return min(c.Bad, c.Total) / c.Total }

// twoShares writes the canary's and the baseline's proportions and their
// ratio.
func (t *text) twoShares(c, b Counts, effect float64) *text {
	return t.s("canary ").num(c.Bad).s("/").num(c.Total).s(" (").pct(c.Bad / c.Total).
		s(") vs baseline ").num(b.Bad).s("/").num(b.Total).s(" (").pct(b.Bad / b.Total).s("): ").times(effect)
}
