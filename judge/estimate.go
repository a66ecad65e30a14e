package judge

import "math"

// Point estimates without a test: what a sequential judge reads from its
// windows. The evidence of a sequential judge comes from Evidence, fed with
// the counts of each interval; its window gives only the seed's measure
// (Result.Worse), the effect, and the latency threshold of the next
// interval. A Result here has PValue 1 and no interval for the effect.

// ProportionEstimate is the seed's measure of Proportion: the ratio of the
// canary's and the baseline's proportions and whether it is past
// o.MinEffect. Insufficient for invalid input, no baseline request or fewer
// canary requests than o.MinRequests.
func ProportionEstimate(canary, baseline Counts, o Options) Result {
	r := newResult(ProportionTest, o)
	f, err := o.effectFactor()
	if err != nil {
		return r.insufficient("invalid options: " + err.Error())
	}
	r.MinEffect = f
	c, err := canary.integers("canary")
	if err != nil {
		return r.insufficient(err.Error())
	}
	b, err := baseline.integers("baseline")
	if err != nil {
		return r.insufficient(err.Error())
	}
	r.Canary, r.Baseline = c, b
	switch {
	case b.Total < 1:
		return r.insufficient("baseline has no requests")
	case c.Total < o.minRequests():
		return r.insufficient(newText().tooFew(c.Total, o.minRequests(), 0).String())
	}
	inc := o.increase()
	r.Effect = ratio(min(canary.Bad, canary.Total)/canary.Total, min(baseline.Bad, baseline.Total)/baseline.Total)
	r.Worse = twoSampleWorse(canary, baseline, f, inc)
	t := newText().s("canary ").num(c.Bad).s("/").num(c.Total).s(" (").pct(c.Bad / c.Total).
		s(") vs baseline ").num(b.Bad).s("/").num(b.Total).s(" (").pct(b.Bad / b.Total).s("): ").times(r.Effect)
	r.Detail = t.estimate(r.Worse, beyond(f, inc)).String()
	return r
}

// ProportionAboveEstimate is the seed's measure of ProportionAbove: the
// canary's share and whether it is past above.
func ProportionAboveEstimate(canary Counts, above float64, o Options) Result {
	r := newResult(ProportionAboveTest, o)
	if _, err := o.effectFactor(); err != nil {
		return r.insufficient("invalid options: " + err.Error())
	}
	r.Above = above
	if math.IsNaN(above) || above < 0 || above > 1 {
		return r.insufficient("threshold is not a proportion in [0, 1]")
	}
	c, err := canary.integers("canary")
	if err != nil {
		return r.insufficient(err.Error())
	}
	r.Canary = c
	if c.Total < o.minRequests() {
		return r.insufficient(newText().tooFew(c.Total, o.minRequests(), 0).String())
	}
	inc := o.increase()
	r.Effect = min(canary.Bad, canary.Total) / canary.Total
	r.Worse = aboveWorse(canary, above, inc)
	t := newText().s("canary ").num(c.Bad).s("/").num(c.Total).s(" = ").pct(r.Effect)
	r.Detail = t.estimate(r.Worse, beyondShare(above, inc)).String()
	return r
}

// LatencyEstimate is the seed's measure of Latency: the ratio of the
// interpolated q-quantiles and whether it is above o.MinEffect; TailBound
// is the baseline's q-quantile bucket bound (QuantileBound; NaN when none),
// the threshold of the next interval of a sequential test.
func LatencyEstimate(canary, baseline []Bucket, q float64, o Options) Result {
	r := newResult(LatencyTest, o)
	f, err := o.effectFactor()
	if err != nil {
		return r.insufficient("invalid options: " + err.Error())
	}
	r.MinEffect, r.Quantile = f, q
	switch {
	case !o.increase():
		return r.insufficient("the latency test judges direction increase only")
	case math.IsNaN(q) || q <= 0 || q >= 1:
		return r.insufficient("quantile is not in (0, 1)")
	}
	ch, bh, err := commonBuckets(canary, baseline)
	if err != nil {
		return r.insufficient(err.Error())
	}
	nc, nb := ch.total(), bh.total()
	r.Canary.Total, r.Baseline.Total = nc, nb
	switch {
	case nb < 1:
		return r.insufficient("baseline has no requests")
	case nc < o.minRequests():
		return r.insufficient(newText().tooFew(nc, o.minRequests(), 0).String())
	}
	qc, qb := Quantile(canary, q), Quantile(baseline, q)
	r.Effect = ratio(qc, qb)
	r.Worse = r.Effect > f
	if u := QuantileBound(baseline, q); u > 0 {
		r.TailBound = u
	}
	t := newText().s("canary p").num(100 * q).s(" ").num(qc).s(" vs baseline ").num(qb).s(": ").times(r.Effect)
	r.Detail = t.estimate(r.Worse, beyond(f, true)).String()
	return r
}

// estimate appends the seed's verdict on a point estimate.
func (t *text) estimate(worse bool, goal func(*text) *text) *text {
	if worse {
		t.s(" ")
		return goal(t).s(": worse")
	}
	t.s(", not ")
	return goal(t).s(": not worse")
}
