package judge

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Bucket is one cumulative histogram bucket, as returned by
// sum by (le) (increase(x_bucket[5m])): Count requests took at most Le.
// Le is +Inf for the last bucket.
type Bucket struct {
	Le    float64 `json:"le"`
	Count float64 `json:"count"`
}

// hist is a normalized histogram: ascending finite upper bounds ending in
// +Inf, integer cumulative counts and integer per-bucket counts.
type hist struct {
	le, cum, n []float64
}

func (h hist) total() float64 { return h.cum[len(h.cum)-1] }

// Latency tests whether the canary's request durations are worse (slower)
// than the baseline's, from histogram buckets, and whether the ratio of
// their interpolated q-quantiles reaches o.MinEffect (see the package
// documentation for the hypotheses). Only Direction Increase is supported.
func Latency(canary, baseline []Bucket, q float64, o Options) Result {
	r := newResult(LatencyTest, o)
	ch, bh, f, ok := latencyInput(&r, canary, baseline, q, o)
	if !ok {
		return r
	}
	if len(ch.le) < 2 {
		return r.insufficient("canary and baseline share no finite bucket bound")
	}
	nc, nb := ch.total(), bh.total()
	r.Canary.Total, r.Baseline.Total = nc, nb
	if r.fewRequests(nc, nb, o, func() float64 { return neededLatency(ch, bh, q, f, o) }) {
		return r
	}

	t := tailTest(ch, bh, q, o.Alpha)
	r.RankP, r.TailP, r.TailBound = rankTest(ch.n, bh.n), t.p, t.bound
	r.Canary.Bad, r.Baseline.Bad = t.canaryAbove, t.baselineAbove
	r.PValue = clampP(2 * min(r.RankP, r.TailP))

	qc, qb := ch.quantile(q), bh.quantile(q)
	r.Effect = ratio(qc, qb)
	z := normalQuantileUpper(o.Alpha / 2)
	cLo, cHi := ch.quantileCI(q, z)
	bLo, bHi := bh.quantileCI(q, z)
	r.EffectLow, r.EffectHigh = ratioLow(cLo, bHi), ratio(cHi, bLo)
	if cLo < 0 || bLo < 0 || r.Effect < 0 { // negative durations: the ratio has no interval
		r.EffectLow, r.EffectHigh = math.NaN(), math.NaN()
	}

	if !latencyCanDecide(ch, bh, q, o.Alpha) {
		r.Needed = neededLatency(ch, bh, q, f, o)
		return r.insufficient(newText().cannotDecide(nc, o.Alpha, "all were in the +Inf bucket", r.Needed).String())
	}
	sig := r.PValue <= o.Alpha
	r.Worse = latencyWorse(canary, baseline, q, f)
	r.Holds = sig && r.Worse
	d := newText().s("canary p").num(100 * q).s(" ").num(qc).s(" vs baseline ").num(qb).s(": ").
		times(r.Effect).s(" [").times(r.EffectLow).s(", ").times(r.EffectHigh).
		s("]; rank p=").num(r.RankP).s(", tail ").num(t.canaryAbove).s("/").num(nc).
		s(" above ").num(t.bound).s(" (expected ").pct(1 - q).s(") p=").num(r.TailP).
		s("; p=").num(r.PValue).s(" ")
	r.Detail = d.verdict(sig, r.Worse, r.Holds, o.Alpha, beyond(f, true)).String()
	return r
}

// latencyWorse is the seed's measure: the ratio of the canary's and the
// baseline's q-quantiles, interpolated by histogram_quantile from each
// side's own buckets as given, strictly above f.
func latencyWorse(canary, baseline []Bucket, q, f float64) bool {
	return ratio(Quantile(canary, q), Quantile(baseline, q)) > f
}

// normalize sorts buckets by bound, merges equal bounds, clamps negative
// counts and enforces monotone cumulative counts (as histogram_quantile
// does for extrapolated increase() values), and requires a +Inf bucket.
func normalize(bs []Bucket, side string) (le, cum []float64, err error) {
	for _, b := range bs {
		if math.IsNaN(b.Le) || math.IsNaN(b.Count) || math.IsInf(b.Count, 0) {
			return nil, nil, fmt.Errorf("%s buckets hold NaN or infinite values", side)
		}
	}
	byLe := func(a, b Bucket) int {
		switch {
		case a.Le < b.Le:
			return -1
		case a.Le > b.Le:
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(bs, byLe) {
		bs = slices.Clone(bs)
		slices.SortFunc(bs, byLe)
	}
	buf := make([]float64, 2*len(bs))
	le, cum = buf[:0:len(bs)], buf[len(bs):len(bs)]
	for _, b := range bs {
		c := max(b.Count, 0)
		if n := len(le); n > 0 && le[n-1] == b.Le {
			cum[n-1] += c
			continue
		}
		le, cum = append(le, b.Le), append(cum, c)
	}
	if len(le) == 0 || !math.IsInf(le[len(le)-1], 1) {
		return nil, nil, fmt.Errorf("%s buckets have no +Inf bucket", side)
	}
	for i := 1; i < len(cum); i++ {
		cum[i] = max(cum[i], cum[i-1])
	}
	if cum[len(cum)-1] > maxCount {
		return nil, nil, fmt.Errorf("%s total exceeds 2^53", side)
	}
	return le, cum, nil
}

// commonBuckets keeps the bounds that both sides have (cumulative counts at
// a shared bound are exact whatever else either side has) and rounds the
// counts to integers.
func commonBuckets(canary, baseline []Bucket) (c, b hist, err error) {
	cle, ccum, err := normalize(canary, "canary")
	if err != nil {
		return c, b, err
	}
	ble, bcum, err := normalize(baseline, "baseline")
	if err != nil {
		return c, b, err
	}
	if slices.Equal(cle, ble) { // the usual case: one bucket layout
		c, b = hist{le: cle, cum: roundAll(ccum)}, hist{le: cle, cum: roundAll(bcum)}
	} else {
		n := min(len(cle), len(ble))
		buf := make([]float64, 3*n)
		c = hist{le: buf[:0:n], cum: buf[n : n : 2*n]}
		b = hist{cum: buf[2*n : 2*n]}
		for i, j := 0, 0; i < len(cle) && j < len(ble); {
			switch {
			case cle[i] < ble[j]:
				i++
			case cle[i] > ble[j]:
				j++
			default:
				c.le = append(c.le, cle[i])
				c.cum = append(c.cum, math.Round(ccum[i]))
				b.cum = append(b.cum, math.Round(bcum[j]))
				i, j = i+1, j+1
			}
		}
		b.le = c.le
	}
	c.n, b.n = perBucket(c.cum), perBucket(b.cum)
	return c, b, nil
}

func roundAll(v []float64) []float64 {
	for i := range v {
		v[i] = math.Round(v[i])
	}
	return v
}

func perBucket(cum []float64) []float64 {
	n := make([]float64, len(cum))
	prev := 0.0
	for i, v := range cum {
		n[i], prev = v-prev, v
	}
	return n
}

// rankTest is the one-sided Mann–Whitney test that canary values tend to
// exceed baseline values, each bucket one group of tied values: normal
// approximation with tie-corrected variance and continuity correction.
func rankTest(c, b []float64) float64 {
	var nc, nb, u, below, ties float64
	for g := range c {
		t := c[g] + b[g]
		u += c[g] * (below + b[g]/2) // pairs canary > baseline, ties half
		below += b[g]
		ties += t * (t*t - 1)
		nc += c[g]
	}
	nb = below
	N := nc + nb
	if nc == 0 || nb == 0 || N < 2 {
		return 1
	}
	v := nc * nb / 12 * ((N + 1) - ties/(N*(N-1)))
	if !(v > 0) {
		return 1 // every request in one bucket: no evidence either way
	}
	return normalUpper((u - nc*nb/2 - 0.5) / math.Sqrt(v))
}

type tailResult struct {
	p, bound                   float64
	canaryAbove, baselineAbove float64
}

// tailTest finds the lowest bucket bound u above which, with confidence
// 1 − alpha, at most a share 1 − q of the baseline's requests lie (the
// one-sided Clopper–Pearson upper bound of the baseline's share above u is
// at most 1 − q), and tests the canary's share of requests above u against
// 1 − q by the exact binomial tail. A small baseline cannot place its
// q-quantile: with 43 requests none of which exceeds u, the share above u
// may well be 8 %, not 1 %; then no finite bound qualifies and there is no
// tail test (p = 1) — the rank test still runs.
//
// The baseline's count above a bound never grows with the bound (the
// cumulative counts are made monotone) and the Clopper–Pearson upper bound
// grows with the count, so the bounds that qualify are all those from the
// lowest one up: it is found by bisection, and a bucket whose observed
// share alone is past 1 − q is ruled out without computing its interval.
func tailTest(c, b hist, q, alpha float64) tailResult {
	nb, nc := b.total(), c.total()
	finite := len(b.cum) - 1
	j := sort.Search(finite, func(j int) bool {
		above := nb - b.cum[j]
		if above/nb > 1-q {
			return false // the upper bound is at least the observed share
		}
		_, hi := clopperPearson(above, nb, alpha)
		return !(hi > 1-q)
	})
	if j == finite {
		return tailResult{p: 1, bound: math.Inf(1), canaryAbove: 0, baselineAbove: 0}
	}
	above, k := nb-b.cum[j], nc-c.cum[j]
	return tailResult{p: binomUpper(nc, k, 1-q), bound: b.le[j], canaryAbove: k, baselineAbove: above}
}

// quantile is histogram_quantile(q): linear interpolation within the
// bucket, the first bucket starting at 0 (if its bound is positive), and
// the highest finite bound for a quantile in the +Inf bucket.
func (h hist) quantile(q float64) float64 {
	total := h.total()
	if total <= 0 || len(h.le) < 2 {
		return math.NaN()
	}
	rank := q * total
	g, _ := slices.BinarySearch(h.cum, rank)
	g = min(g, len(h.cum)-1)
	if g == len(h.cum)-1 {
		return h.le[g-1]
	}
	return h.interpolate(g, rank)
}

func (h hist) interpolate(g int, rank float64) float64 {
	if g == 0 && h.le[0] <= 0 {
		return h.le[0]
	}
	start, prev := 0.0, 0.0
	if g > 0 {
		start, prev = h.le[g-1], h.cum[g-1]
	}
	count := h.cum[g] - prev
	if count <= 0 {
		return h.le[g]
	}
	return start + (h.le[g]-start)*((rank-prev)/count)
}

// quantileCI is an approximate distribution-free interval for the
// q-quantile: the histogram quantiles at the Wilson score bounds for q at
// normal deviate z. A bound in the +Inf bucket is the highest finite bound
// for the lower end (as histogram_quantile) and +Inf for the upper end.
func (h hist) quantileCI(q, z float64) (lo, hi float64) {
	n := h.total()
	if n <= 0 || len(h.le) < 2 {
		return math.NaN(), math.NaN()
	}
	z2n := z * z / n
	den := 1 + z2n
	center := (q + z2n/2) / den
	half := z * math.Sqrt(q*(1-q)/n+z2n/(4*n)) / den
	lo = min(0, h.le[0])
	if p := center - half; p > 0 {
		lo = h.quantile(p)
	}
	hi = h.quantile(min(center+half, 1))
	if g, _ := slices.BinarySearch(h.cum, min(center+half, 1)*n); g >= len(h.cum)-1 {
		hi = math.Inf(1)
	}
	return lo, hi
}

// ratioLow is a lower confidence bound a / b that treats ∞ / ∞ as 0.
func ratioLow(a, b float64) float64 {
	if math.IsInf(b, 1) {
		return 0
	}
	return ratio(a, b)
}

// Quantile is histogram_quantile(q) over cumulative buckets: NaN when the
// buckets are empty or malformed.
func Quantile(bs []Bucket, q float64) float64 {
	le, cum, err := normalize(bs, "")
	if err != nil {
		return math.NaN()
	}
	return hist{le: le, cum: cum}.quantile(q)
}
