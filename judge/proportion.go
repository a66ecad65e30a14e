package judge

import "math"

// minBad is the number of bad canary requests below which an Increase
// proportion test never holds: one bad request is never evidence, however
// clean the baseline.
const minBad = 2

// Proportion tests whether the canary's proportion of bad requests is worse
// than the baseline's by at least o.MinEffect (see the package
// documentation for the hypotheses).
func Proportion(canary, baseline Counts, o Options) Result {
	r := newResult(ProportionTest, o)
	c, b, f, ok := twoSampleInput(&r, canary, baseline, o)
	if !ok || r.fewRequests(c.Total, b.Total, o, func() float64 { return neededTwoSample(c, b, f, o) }) {
		return r
	}
	inc := o.increase()

	r.PValue = twoSampleP(c, b, f, inc)
	r.Effect = ratio(c.Bad/c.Total, b.Bad/b.Total)
	worse := twoSampleWorse(canary, baseline, f, inc)
	// Exact conditional interval: canary share of all bad requests,
	// Clopper–Pearson, mapped to the rate-ratio scale.
	m := c.Bad + b.Bad
	lo, hi := clopperPearson(c.Bad, m, o.Alpha)
	scale := b.Total / c.Total
	r.EffectLow, r.EffectHigh = oddsTimes(lo, scale), oddsTimes(hi, scale)

	if !twoSampleCanDecide(c.Total, b, f, o) {
		r.Needed = neededTwoSample(c, b, f, o)
		return r.insufficient(newText().cannotDecide(c.Total, o.Alpha, worstCase(inc), r.Needed).String())
	}

	sig := r.PValue <= o.Alpha
	r.Worse = worse
	r.Holds = sig && worse && (!inc || c.Bad >= minBad)
	t := newText().twoShares(c, b, r.Effect).s(" [").times(r.EffectLow).s(", ").times(r.EffectHigh).
		s("], p=").num(r.PValue).s(" ")
	r.Detail = t.verdict(sig, worse, r.Holds, o.Alpha, beyond(f, inc)).String()
	return r
}

// twoSampleWorse is the seed's measure on the counts as given: the ratio of
// the canary's and the baseline's proportions strictly past f (Increase:
// above f; Decrease: below 1/f). No bad request on either side is not
// worse; a bad canary request against an all-zero baseline is (Increase).
// The counts are valid (finite, non-negative) and both totals positive.
func twoSampleWorse(canary, baseline Counts, f float64, inc bool) bool {
	if canary.Total <= 0 || baseline.Total <= 0 {
		return false
	}
	return effectPast(ratio(badShare(canary), badShare(baseline)), f, inc)
}

// aboveWorse is the seed's measure of the one-sample test: the canary's
// share, from the counts as given, strictly past the threshold.
func aboveWorse(canary Counts, above float64, inc bool) bool {
	if canary.Total <= 0 {
		return false
	}
	if inc {
		return badShare(canary) > above
	}
	return badShare(canary) < above
}

// twoSampleP is the one-sided p-value of H0: p_c ≤ f·p_b (Increase) or
// p_c ≥ p_b / f (Decrease): the larger of the Fisher exact test (H0 at
// f = 1) and, for f > 1, the conditional binomial test of the shifted
// rate ratio.
func twoSampleP(c, b Counts, f float64, inc bool) float64 {
	N, K := c.Total+b.Total, c.Bad+b.Bad
	var p float64
	if inc {
		p = hyperUpper(N, K, c.Total, c.Bad)
	} else {
		p = hyperLower(N, K, c.Total, c.Bad)
	}
	if f > 1 {
		// π0 written so that no product overflows for huge f or counts.
		if inc {
			pi0 := 1 / (1 + b.Total/(f*c.Total))
			p = max(p, binomUpper(K, c.Bad, pi0))
		} else {
			pi0 := 1 / (1 + f*b.Total/c.Total)
			p = max(p, binomLower(K, c.Bad, pi0))
		}
	}
	return clampP(p)
}

// clampP keeps p in [0, 1]; NaN, which no valid input produces, reads as 1.
func clampP(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return min(max(p, 0), 1)
}

// twoSampleCanDecide reports whether the most extreme canary outcome at n
// canary requests (all bad with Increase, none bad with Decrease) would be
// significant and, with Increase, count at least minBad bad requests.
func twoSampleCanDecide(n float64, b Counts, f float64, o Options) bool {
	if o.increase() {
		if n < minBad {
			return false
		}
		return twoSampleP(Counts{Bad: n, Total: n}, b, f, true) <= o.Alpha
	}
	return twoSampleP(Counts{Bad: 0, Total: n}, b, f, false) <= o.Alpha
}

// neededTwoSample is about the smallest canary request count at which a
// canary with the observed proportion (or, if that is not worse by the
// factor f, the most extreme proportion) would be significant, the baseline
// growing in proportion (same traffic split, same baseline proportion).
func neededTwoSample(c, b Counts, f float64, o Options) float64 {
	if b.Total < 1 {
		return math.Inf(1)
	}
	inc := o.increase()
	share := worstShare(inc)
	if c.Total >= 1 && effectPast(ratio(c.Bad/c.Total, b.Bad/b.Total), f, inc) {
		share = c.Bad / c.Total
	}
	base := max(c.Total, 1)
	from := max(c.Total, o.minRequests()-1)
	return searchNeeded(from, twoSampleGuess(share, b, base, f, o), func(n float64) bool {
		if n < o.minRequests() {
			return false
		}
		s := n / base
		bs := Counts{Bad: math.Round(b.Bad * s), Total: math.Round(b.Total * s)}
		if c.Total < 1 {
			bs = b
		}
		cs := Counts{Bad: math.Round(share * n), Total: n}
		if inc && cs.Bad < minBad {
			return false
		}
		return twoSampleP(cs, bs, f, inc) <= o.Alpha
	})
}

// twoSampleGuess is the normal approximation of neededTwoSample's answer:
// the shifted binomial test's z-score grows as the square root of the
// request count, the shares and the split fixed. 0 when it has none.
func twoSampleGuess(share float64, b Counts, base, f float64, o Options) float64 {
	r := b.Total / base                     // baseline requests per canary request
	m := share + b.Bad/b.Total*r            // counted requests per canary request
	pi0, excess := f/(f+r), share-m*f/(f+r) // the canary's share of them under H0, and its excess
	if !o.increase() {
		pi0 = 1 / (1 + f*r)
		excess = m*pi0 - share
	}
	z1 := excess / math.Sqrt(m*pi0*(1-pi0))
	if !(z1 > 0) {
		return 0
	}
	z := normalQuantileUpper(o.Alpha)
	n := math.Ceil(z * z / (z1 * z1))
	if n > bigNeeded && n*m*pi0 >= 100 {
		return -roundUp2(n) // the approximation is the answer
	}
	return n
}

// bigNeeded is the needed request count above which, when the expected
// number of counted requests under H0 is at least 100 (where the normal
// approximation of the binomial tail is good at any practical α), the
// normal approximation is reported as the answer, rounded up to two
// significant digits, instead of searched by exact tests whose cost grows
// with the counts.
const bigNeeded = 4096

// roundUp2 rounds n up to two significant digits.
func roundUp2(n float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(n))-1)
	return math.Ceil(n/e) * e
}

// ProportionAbove tests whether the canary's proportion of bad requests is
// above the fixed proportion above (with Decrease: below it), by the exact
// binomial test. o.MinEffect is not used.
func ProportionAbove(canary Counts, above float64, o Options) Result {
	r := newResult(ProportionAboveTest, o)
	c, ok := aboveInput(&r, canary, above, o)
	if !ok {
		return r
	}
	inc := o.increase()
	if (inc && above >= 1) || (!inc && above <= 0) {
		r.Needed = math.Inf(1)
		return r.insufficient(newText().s("no proportion is ", worseWord(inc), " ").pct(above).String())
	}
	if r.fewCanary(c.Total, o, func() float64 { return neededAbove(c, above, o) }) {
		return r
	}
	r.PValue = aboveP(c, above, inc)
	r.Effect = c.Bad / c.Total
	r.EffectLow, r.EffectHigh = clopperPearson(c.Bad, c.Total, o.Alpha)
	if !aboveCanDecide(c.Total, above, o) {
		r.Needed = neededAbove(c, above, o)
		return r.insufficient(newText().cannotDecide(c.Total, o.Alpha, worstCase(inc), r.Needed).String())
	}
	sig := r.PValue <= o.Alpha
	r.Worse = aboveWorse(canary, above, inc)
	r.Holds = sig && r.Worse && (!inc || c.Bad >= minBad)
	t := newText().s("canary ").num(c.Bad).s("/").num(c.Total).s(" = ").pct(r.Effect).
		s(" [").pct(r.EffectLow).s(", ").pct(r.EffectHigh).s("] vs ", worseWord(inc), " ").pct(above).
		s(": p=").num(r.PValue).s(" ")
	r.Detail = t.verdict(sig, r.Worse, r.Holds, o.Alpha, beyondShare(above, inc)).String()
	return r
}

func aboveP(c Counts, above float64, inc bool) float64 {
	if inc {
		return clampP(binomUpper(c.Total, c.Bad, above))
	}
	return clampP(binomLower(c.Total, c.Bad, above))
}

func aboveCanDecide(n, above float64, o Options) bool {
	if o.increase() {
		return n >= minBad && aboveP(Counts{Bad: n, Total: n}, above, true) <= o.Alpha
	}
	return aboveP(Counts{Bad: 0, Total: n}, above, false) <= o.Alpha
}

// neededAbove is about the smallest canary request count at which the
// observed proportion (or, if it is not beyond the threshold, the most
// extreme one) would be significant.
func neededAbove(c Counts, above float64, o Options) float64 {
	inc := o.increase()
	share := worstShare(inc)
	if c.Total >= 1 {
		if obs := c.Bad / c.Total; (inc && obs > above) || (!inc && obs < above) {
			share = obs
		}
	}
	var guess float64
	if d := math.Abs(share - above); d > 0 {
		z := normalQuantileUpper(o.Alpha)
		guess = math.Ceil(z * z * above * (1 - above) / (d * d))
		if guess > bigNeeded && guess*min(above, 1-above) >= 100 {
			guess = -roundUp2(guess)
		}
	}
	return searchNeeded(max(c.Total, o.minRequests()-1), guess, func(n float64) bool {
		if n < o.minRequests() {
			return false
		}
		cs := Counts{Bad: math.Round(share * n), Total: n}
		if inc && cs.Bad < minBad {
			return false
		}
		return aboveP(cs, above, inc) <= o.Alpha
	})
}

// neededPrecision is the relative precision of a needed request count: the
// search stops once the answer is known to within 1/16 of it (exactly below
// 16 requests), which bounds its cost; Detail says "about".
const neededPrecision = 16

// searchNeeded returns about the smallest n > from with ok(n) (ok is
// assumed monotone): starting from guess when it is above from (the normal
// approximation of the answer; 0 when none), then doubling, then
// bisection to within 1/neededPrecision of the answer. +Inf when no n up to
// 2^53 is ok. A negative guess is the answer itself, −n (large counts,
// where the approximation is good and exact tests are costly).
func searchNeeded(from, guess float64, ok func(float64) bool) float64 {
	if guess < 0 {
		return max(-guess, math.Floor(from)+1)
	}
	lo := max(math.Floor(from), 0)
	hi := max(2*lo, lo+1)
	if g := math.Ceil(guess); g > lo && g < maxCount {
		if ok(g) {
			hi = g
		} else {
			lo, hi = g, min(2*g, maxCount)
		}
	}
	for !ok(hi) {
		if hi >= maxCount {
			return math.Inf(1)
		}
		lo, hi = hi, min(2*hi, maxCount)
	}
	for hi-lo > max(1, hi/neededPrecision) {
		mid := math.Floor((lo + hi) / 2)
		if ok(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// oddsTimes maps a share π of all bad requests to the rate ratio
// π/(1−π) · scale.
func oddsTimes(pi, scale float64) float64 {
	if pi >= 1 {
		return math.Inf(1)
	}
	return pi / (1 - pi) * scale
}

// effectPast reports whether an effect is strictly past the factor f
// toward worse.
func effectPast(effect, f float64, inc bool) bool {
	if inc {
		return effect > f
	}
	return effect < 1/f
}

func worstShare(inc bool) float64 {
	if inc {
		return 1
	}
	return 0
}
