package judge

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
	c, b, f, ok := twoSampleInput(&r, canary, baseline, o)
	if !ok || r.fewRequests(c.Total, b.Total, o, nil) {
		return r
	}
	inc := o.increase()
	r.Effect = ratio(badShare(canary), badShare(baseline))
	r.Worse = twoSampleWorse(canary, baseline, f, inc)
	r.Detail = newText().twoShares(c, b, r.Effect).estimate(r.Worse, beyond(f, inc)).String()
	return r
}

// ProportionAboveEstimate is the seed's measure of ProportionAbove: the
// canary's share and whether it is past above.
func ProportionAboveEstimate(canary Counts, above float64, o Options) Result {
	r := newResult(ProportionAboveTest, o)
	c, ok := aboveInput(&r, canary, above, o)
	if !ok || r.fewCanary(c.Total, o, nil) {
		return r
	}
	inc := o.increase()
	r.Effect = badShare(canary)
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
	ch, bh, f, ok := latencyInput(&r, canary, baseline, q, o)
	if !ok {
		return r
	}
	nc, nb := ch.total(), bh.total()
	r.Canary.Total, r.Baseline.Total = nc, nb
	if r.fewRequests(nc, nb, o, nil) {
		return r
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
