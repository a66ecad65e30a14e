package montecarlo

import (
	"fmt"
	"math"
	"time"
)

// FalseRollbackBar is the bar on false rollbacks per healthy
// canary-hour.
const FalseRollbackBar = 0.01

// significance is the level of the one-sided tests that Verdicts with slack
// use: a bar fails only when the sample is significantly worse than it.
const significance = 0.05

// Verdict is one bar checked against the default policy's measurements.
type Verdict struct {
	Bar      string
	Measured string
	Pass     bool
}

// Verdicts checks the default policy's measurements against the issue's
// bars. Without slack each point estimate must meet its bar: false
// rollbacks at most FalseRollbackBar per canary-hour, the median time to
// rollback at most the case's Within. With slack (a small sample) a bar
// fails only when the sample is significantly worse than the bar at the 5 %
// level: more false rollbacks than a Poisson count at the bar's rate reaches
// with probability 5 %, or more runs slower than Within than a fair coin
// gives with probability 5 % (the sign test of the median). Either way a
// healthy case with no errors on either side must never roll back, and
// every fault must be rolled back within the Horizon.
func (r *Results) Verdicts(slack bool) []Verdict {
	var out []Verdict
	for _, h := range r.Healthy {
		if h.Rules != defaultName {
			continue
		}
		bar := FalseRollbackBar * float64(h.CanaryHours)
		allowed := int(math.Floor(bar))
		if slack {
			allowed = poissonAllowed(bar)
		}
		if h.Case.Tweak != nil { // no errors anywhere: nothing to be noisy about
			allowed = 0
		}
		out = append(out, Verdict{
			Bar:      fmt.Sprintf("healthy %s: at most %d rollback episodes in %d canary-hours", h.Case.Name, allowed, h.CanaryHours),
			Measured: fmt.Sprintf("%d (%.3g per canary-hour)", h.Rollbacks, h.PerHour()),
			Pass:     h.Rollbacks <= allowed,
		})
	}
	for _, f := range r.Faults {
		if f.Rules != defaultName {
			continue
		}
		out = append(out, Verdict{
			Bar:      fmt.Sprintf("%s: none missed within %s", f.Case.Name, fmtDuration(Horizon)),
			Measured: fmt.Sprintf("%d of %d missed", f.Missed, f.Runs),
			Pass:     f.Missed == 0,
		})
		if f.Case.Within == 0 {
			continue
		}
		m, ok := f.Median()
		slower := f.Missed + countAbove(f.Times, f.Case.Within)
		v := Verdict{
			Bar:      fmt.Sprintf("%s: median time to rollback ≤ %s", f.Case.Name, fmtDuration(f.Case.Within)),
			Measured: fmt.Sprintf("median %s, %d of %d runs slower", fmtMedian(m, ok), slower, f.Runs),
			Pass:     ok && m <= f.Case.Within,
		}
		if slack {
			v.Bar += fmt.Sprintf(" (sign test: fewer than %d of %d slower)", signAllowed(f.Runs)+1, f.Runs)
			v.Pass = slower <= signAllowed(f.Runs)
		}
		out = append(out, v)
	}
	return out
}

// poissonAllowed is the largest count k with P(Poisson(mean) ≥ k) above
// the significance level: more than k is significantly above the mean.
func poissonAllowed(mean float64) int {
	tail, p := 1.0, math.Exp(-mean) // P(X ≥ k), P(X = k)
	k := 0
	for {
		tail -= p // P(X ≥ k+1)
		if tail <= significance {
			return k
		}
		k++
		p *= mean / float64(k)
	}
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
