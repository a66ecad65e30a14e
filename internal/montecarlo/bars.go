package montecarlo

import (
	"fmt"
	"math"
	"time"
)

// Verdict is one bar checked against a judge's measurements.
type Verdict struct {
	Bar      string
	Measured string
	Pass     bool
	// OutOfReach is why no rule measured under the seed's holds meets this
	// bar (FaultCase); such a bar is reported, not asserted.
	OutOfReach string
}

// significance is the level of the one-sided sign test that Verdicts with
// slack use: a median bar fails only when significantly more than half of
// the runs are slower.
const significance = 0.05

// Verdicts checks one judge's measurements against the bars: no
// false rollback in any healthy canary-hour (0.2–50 req/s, and zero-error
// baselines), every regression rolled back within the Horizon, and its
// median time to rollback at most the case's Within. With slack (a small
// sample) a median bar fails only when the sample is significantly worse:
// more runs slower than Within than a fair coin gives with probability 5 %
// (the sign test of the median). The bar on false rollbacks has no slack.
func (r *Results) Verdicts(judge string, slack bool) []Verdict {
	var out []Verdict
	hours, rollbacks := 0.0, 0
	for _, h := range r.Healthy {
		if h.Rules != judge {
			continue
		}
		hours += h.CanaryHours()
		rollbacks += h.Rollbacks
		out = append(out, Verdict{
			Bar:      fmt.Sprintf("healthy %s: no rollback in %g canary-hours", h.Case.Name, h.CanaryHours()),
			Measured: fmt.Sprintf("%d", h.Rollbacks),
			Pass:     h.Rollbacks == 0,
		})
	}
	if hours > 0 {
		out = append(out, Verdict{
			Bar:      fmt.Sprintf("all healthy canaries: no rollback in %g canary-hours", hours),
			Measured: fmt.Sprintf("%d", rollbacks),
			Pass:     rollbacks == 0,
		})
	}
	for _, f := range r.Faults {
		if f.Rules != judge {
			continue
		}
		out = append(out, Verdict{
			Bar:        fmt.Sprintf("%s: none missed within %s", f.Case.Name, fmtDuration(Horizon)),
			Measured:   fmt.Sprintf("%d of %d missed", f.Missed, f.Runs),
			Pass:       f.Missed == 0,
			OutOfReach: f.Case.MissedOutOfReach,
		})
		if f.Case.Within == 0 {
			continue
		}
		m, ok := f.Median()
		slower := f.Missed + countAbove(f.Times, f.Case.Within)
		v := Verdict{
			Bar:        fmt.Sprintf("%s: median time to rollback ≤ %s", f.Case.Name, fmtDuration(f.Case.Within)),
			Measured:   fmt.Sprintf("median %s, %d of %d runs slower", fmtMedian(m, ok), slower, f.Runs),
			Pass:       ok && m <= f.Case.Within,
			OutOfReach: f.Case.SlowOutOfReach,
		}
		if slack {
			v.Bar += fmt.Sprintf(" (sign test: fewer than %d of %d slower)", signAllowed(f.Runs)+1, f.Runs)
			v.Pass = slower <= signAllowed(f.Runs)
		}
		out = append(out, v)
	}
	return out
}

// Passes reports whether judge meets every bar within reach, and how many
// bars it misses (out of reach or not).
func (r *Results) Passes(judge string, slack bool) (ok bool, missed int) {
	ok = true
	for _, v := range r.Verdicts(judge, slack) {
		if !v.Pass {
			missed++
			ok = ok && v.OutOfReach != ""
		}
	}
	return ok, missed
}

// signAllowed is the largest count k of n runs slower than the bar with
// P(Binomial(n, ½) ≥ k) above the significance level.
func signAllowed(n int) int {
	tail := 1.0 // P(X ≥ k)
	p := math.Pow(0.5, float64(n))
	pk := p // P(X = 0)
	for k := 0; k < n; k++ {
		tail -= pk // P(X ≥ k+1)
		if tail <= significance {
			return k
		}
		pk *= float64(n-k) / float64(k+1)
	}
	return n
}

func countAbove(ts []time.Duration, bar time.Duration) int {
	n := 0
	for _, t := range ts {
		if t > bar {
			n++
		}
	}
	return n
}
