package judge

import (
	"math"
)

// The anytime-valid test of a sequential judge (see the package
// documentation, "Sequential evidence"): a mixture of likelihood ratios of
// the conditional binomial model over a grid of odds ratios, accumulated over
// the evaluation intervals of one active run of a trigger.

// gridSize is the number of odds ratios of the mixture; the grid is
// 1.5, 1.5², …, 1.5^16 ≈ 657, each with weight 1/gridSize.
const gridSize = 16

// gridRatio is the grid's step: odds ratios 1.5^j, j = 1 … gridSize.
const gridRatio = 1.5

var (
	gridLogRho [gridSize]float64 // ln ρ_j
	gridRhoM1  [gridSize]float64 // ρ_j − 1
	logGridW   = -math.Log(gridSize)
)

func init() {
	for j := range gridSize {
		gridLogRho[j] = float64(j+1) * math.Log(gridRatio)
		gridRhoM1[j] = math.Exp(gridLogRho[j]) - 1
	}
}

// SeqTest is what a sequential judge tests at each interval.
type SeqTest struct {
	// Above, when set (in (0, 1)), makes the test one-sample: the canary's
	// share of bad requests against the fixed share Above. Otherwise the
	// test is two-sample: the canary's share of all bad requests against
	// the share it would have if its proportion were MinEffect × the
	// baseline's.
	Above float64
	// MinEffect ≥ 1 is the normalized factor of the shifted null (two-sample).
	MinEffect float64
	// Decrease: a lower canary proportion is worse.
	Decrease bool
}

// Evidence is the state of the sequential test of one trigger: the mixture
// likelihood ratio of its current episode (its active runs, decide says
// which), and how many episodes the canary's life has begun, over which the
// false-alarm probability α is spent (episode k must reach k(k+1)/α). Its
// zero value is a life with no episode. It has a fixed size and no
// pointers: it is copied with the trigger's state.
type Evidence struct {
	logLR [gridSize]float64
	// Episode is the number of episodes begun in this life, the current one
	// included; 0 before the first.
	Episode int
	// Intervals is the number of intervals added to the current episode.
	Intervals int
	// Canary and Baseline are the counts added to the current episode (for
	// latency: requests above the threshold of each interval, out of all).
	Canary, Baseline Counts
	// Bound is, for a latency test, the threshold of the next interval: the
	// baseline's quantile bucket bound of the latest window (0: none).
	Bound float64
}

// Begin starts a new episode: the evidence of the previous one is dropped
// and the episode's share of α shrinks.
func (e *Evidence) Begin() {
	k := e.Episode + 1
	*e = Evidence{Episode: k, Bound: e.Bound}
}

// Add adds one interval's counts to the current episode (Begin must have
// been called). Invalid counts (NaN, ±Inf, negative) and intervals without
// information (no canary request, no baseline request in a two-sample test)
// add nothing; counts are rounded and a bad count above its total is
// clamped, as in the fixed-window tests.
func (e *Evidence) Add(canary, baseline Counts, t SeqTest) {
	c, err := canary.integers("canary")
	if err != nil || c.Total < 1 {
		return
	}
	if t.Above > 0 {
		e.add(c.Bad, c.Total, t.Above, t.Decrease)
		e.Canary.Bad += c.Bad
		e.Canary.Total += c.Total
		e.Intervals++
		return
	}
	b, err := baseline.integers("baseline")
	if err != nil || b.Total < 1 {
		return
	}
	f := max(t.MinEffect, 1)
	m := c.Bad + b.Bad
	if t.Decrease {
		// Worse is fewer canary bad (here: good) requests: the baseline's
		// share of all of them, against its share under the shifted null.
		e.add(b.Bad, m, 1/(1+c.Total/(f*b.Total)), false)
	} else {
		e.add(c.Bad, m, 1/(1+b.Total/(f*c.Total)), false)
	}
	e.Canary.Bad += c.Bad
	e.Canary.Total += c.Total
	e.Baseline.Bad += b.Bad
	e.Baseline.Total += b.Total
	e.Intervals++
}

// add multiplies every component by the likelihood ratio of x successes in
// m trials with success probability π1 = π0ρ/(1 − π0 + π0ρ) against π0
// (the log-odds shifted by ln ρ): ρ^x / (1 − π0 + π0ρ)^m. With dec the
// failures are the successes.
func (e *Evidence) add(x, m, pi0 float64, dec bool) {
	if dec {
		x, pi0 = m-x, 1-pi0
	}
	if m <= 0 || !(pi0 > 0) || !(pi0 < 1) {
		return // no information: the ratio is 1
	}
	for j := range gridSize {
		e.logLR[j] += x*gridLogRho[j] - m*math.Log1p(pi0*gridRhoM1[j])
	}
}

// LogE is the natural logarithm of the current episode's e-value: its
// share of α, 1/(k(k+1)) for the k-th episode, times the mixture likelihood
// ratio. -Inf before the first episode.
func (e *Evidence) LogE() float64 {
	if e.Episode < 1 {
		return math.Inf(-1)
	}
	k := float64(e.Episode)
	return -math.Log(k*(k+1)) + logGridW + logSumExp(&e.logLR)
}

// EValue is exp(LogE), capped at 1e300 (JSON carries no infinity).
func (e *Evidence) EValue() float64 {
	return math.Exp(min(e.LogE(), math.Log(1e300)))
}

// Suffices reports whether the episode's evidence proves the canary worse
// at level alpha: e-value ≥ 1/alpha.
func (e *Evidence) Suffices(alpha float64) bool {
	return alpha > 0 && e.LogE() >= -math.Log(alpha)
}

func logSumExp(v *[gridSize]float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// AddTail adds one interval of a latency test: each side's requests above
// the threshold Bound (set from the previous window by SetBound) out of all
// its requests, compared two-sample with factor 1 (H0: the canary's share
// above the threshold is no higher than the baseline's). le and cum are an
// interval's cumulative histogram per side; an interval without a shared
// bucket at the threshold adds nothing.
func (e *Evidence) AddTail(canaryLe, canaryCum, baselineLe, baselineCum []float64) {
	c, okC := above(canaryLe, canaryCum, e.Bound)
	b, okB := above(baselineLe, baselineCum, e.Bound)
	if okC && okB {
		e.Add(c, b, SeqTest{MinEffect: 1})
	}
}

// SetBound sets the threshold of the next latency interval; a bound that is
// not a positive finite number clears it.
func (e *Evidence) SetBound(u float64) {
	if !(u > 0) || math.IsInf(u, 1) {
		u = 0
	}
	e.Bound = u
}

// above counts the requests of a cumulative histogram above the bound u:
// the total (the +Inf bucket) minus the cumulative count at u.
func above(le, cum []float64, u float64) (Counts, bool) {
	if u <= 0 || len(le) == 0 || len(le) != len(cum) || !math.IsInf(le[len(le)-1], 1) {
		return Counts{}, false
	}
	total := cum[len(cum)-1]
	for i, b := range le {
		if b == u {
			return Counts{Bad: max(total-cum[i], 0), Total: total}, true
		}
	}
	return Counts{}, false
}

// QuantileBound is the upper bound of the bucket holding the q-quantile of
// cumulative buckets (the first bound whose cumulative count reaches q of
// the total): the threshold of a sequential latency test. 0 when the
// buckets are malformed or empty, or the quantile is in the +Inf bucket.
func QuantileBound(bs []Bucket, q float64) float64 {
	le, cum, err := normalize(bs, "")
	if err != nil || len(le) < 2 {
		return 0
	}
	total := cum[len(cum)-1]
	if !(total > 0) {
		return 0
	}
	for i, c := range cum[:len(cum)-1] {
		if c >= q*total {
			return max(le[i], 0)
		}
	}
	return 0
}

// Describe is the episode's evidence for a Detail: the counts added since
// it began and the e-value against 1/alpha.
func (e *Evidence) Describe(alpha float64, t SeqTest, latency bool) string {
	d := newText()
	switch {
	case e.Episode < 1:
		return "no episode"
	case e.Intervals == 0:
		return d.s("episode ").num(float64(e.Episode)).s(", no interval counted yet: e=").num(e.EValue()).
			s(" < 1/α=").num(1 / alpha).String()
	}
	d.s("episode ").num(float64(e.Episode)).s(": canary ").num(e.Canary.Bad).s("/").num(e.Canary.Total)
	switch {
	case latency:
		d.s(" vs baseline ").num(e.Baseline.Bad).s("/").num(e.Baseline.Total).s(" above the baseline's quantile bucket")
	case t.Above > 0:
		d.s(" (").pct(e.Canary.Bad / e.Canary.Total).s(") vs ").pct(t.Above)
	default:
		d.s(" (").pct(e.Canary.Bad / e.Canary.Total).s(") vs baseline ").num(e.Baseline.Bad).s("/").num(e.Baseline.Total).
			s(" (").pct(e.Baseline.Bad / e.Baseline.Total).s(")")
	}
	d.s(" in ").num(float64(e.Intervals)).s(" intervals, e=").num(e.EValue())
	if e.Suffices(alpha) {
		return d.s(" ≥ 1/α=").num(1 / alpha).s(": proven").String()
	}
	return d.s(" < 1/α=").num(1 / alpha).s(": not yet proven").String()
}

// Cumulative normalizes buckets as the latency test does (sorted, merged,
// monotone) and returns their bounds and cumulative counts; nil when they
// are malformed (no +Inf bucket, NaN).
func Cumulative(bs []Bucket) (le, cum []float64) {
	le, cum, err := normalize(bs, "")
	if err != nil {
		return nil, nil
	}
	return le, cum
}
