package judge

import "math"

// Needed-request searches for the latency test; the proportion tests have
// theirs next to them.

// latencyP is the Bonferroni-combined one-sided p-value of the rank and
// tail tests.
func latencyP(c, b hist, q, alpha float64) float64 {
	return clampP(2 * min(rankTest(c.n, b.n), tailTest(c, b, q, alpha).p))
}

// extremeHist puts n requests into the +Inf bucket of a histogram with
// bounds le.
func extremeHist(le []float64, n float64) hist {
	h := hist{le: le, cum: make([]float64, len(le)), n: make([]float64, len(le))}
	h.cum[len(le)-1], h.n[len(le)-1] = n, n
	return h
}

// scaleHist multiplies every bucket of h by s, rounding per bucket.
func scaleHist(h hist, s float64) hist {
	out := hist{le: h.le, cum: make([]float64, len(h.n)), n: make([]float64, len(h.n))}
	var sum float64
	for i, v := range h.n {
		out.n[i] = math.Round(v * s)
		sum += out.n[i]
		out.cum[i] = sum
	}
	return out
}

// latencyCanDecide reports whether the most extreme canary (every request in
// the +Inf bucket) would be significant at alpha.
func latencyCanDecide(c, b hist, q, alpha float64) bool {
	return latencyP(extremeHist(c.le, c.total()), b, q, alpha) <= alpha
}

// neededLatency is the smallest canary request count at which a canary with
// the observed distribution (or, when its effect does not reach f, every
// request in the +Inf bucket) would be significant, the baseline growing in
// proportion.
func neededLatency(c, b hist, q, f float64, o Options) float64 {
	nc := c.total()
	shape := extremeHist(c.le, 1)
	if nc >= 1 && effectPast(ratio(c.quantile(q), b.quantile(q)), f, true) {
		shape = hist{le: c.le, n: make([]float64, len(c.n))}
		for i, v := range c.n {
			shape.n[i] = v / nc
		}
	}
	base := max(nc, 1)
	return searchNeeded(max(nc, o.minRequests()-1), 0, func(n float64) bool {
		if n < o.minRequests() {
			return false
		}
		bs := b
		if nc >= 1 {
			bs = scaleHist(b, n/base)
		}
		return latencyP(scaleHist(shape, n), bs, q, o.Alpha) <= o.Alpha
	})
}
