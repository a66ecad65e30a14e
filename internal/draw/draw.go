// Package draw draws the random counts of the synthetic histories
// (internal/scenario, internal/releases): requests in an interval
// (Poisson) and the bad or slow ones among them (binomial). The draws of a
// seed are the same from one release to the next: the committed examples,
// and the measurements documented from them, are regenerated from a seed.
package draw

import (
	"math"
	"math/rand/v2"
)

// Poisson draws a Poisson variate of the mean (normal approximation above
// 500).
func Poisson(r *rand.Rand, mean float64) float64 {
	if mean <= 0 {
		return 0
	}
	if mean > 500 {
		return math.Max(0, math.Round(mean+math.Sqrt(mean)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Binomial draws Binomial(n, p): the normal approximation when both n·p
// and n·(1-p) exceed 50, else exact, by the gaps between successes when
// they are few (n·p < 30, p < 0.1), else by n trials.
func Binomial(r *rand.Rand, n, p float64) float64 {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case n*p > 50 && n*(1-p) > 50:
		return math.Min(n, math.Max(0, math.Round(n*p+math.Sqrt(n*p*(1-p))*r.NormFloat64())))
	case n*p < 30 && p < 0.1:
		k, i, lq := 0.0, 0.0, math.Log1p(-p)
		for {
			i += math.Floor(math.Log(1-r.Float64())/lq) + 1
			if i > n {
				return k
			}
			k++
		}
	}
	k := 0.0
	for i := 0.0; i < n; i++ {
		if r.Float64() < p {
			k++
		}
	}
	return k
}
