package montecarlo

import "math"

// ciTail is each tail of the two-sided 95 % intervals of the tables.
const ciTail = 0.025

// poissonCI is the exact (Garwood) 95 % interval for a Poisson mean from k
// events.
func poissonCI(k int) (lo, hi float64) {
	cdf := func(mu float64) float64 { // P(X ≤ k)
		var s float64
		for i := 0; i <= k; i++ {
			s += math.Exp(float64(i)*math.Log(mu) - mu - lgamma(float64(i)+1))
		}
		return s
	}
	if k > 0 {
		// P(X ≥ k | lo) = ciTail, i.e. P(X ≤ k−1 | lo) = 1 − ciTail.
		lo = bisect(0, float64(k), func(mu float64) bool { return 1-cdfBelow(mu, k) < ciTail })
	}
	hi = bisect(float64(k), float64(k)+20+10*math.Sqrt(float64(k)+1), func(mu float64) bool { return cdf(mu) > ciTail })
	return lo, hi
}

// cdfBelow is P(X ≤ k−1) for X ~ Poisson(mu).
func cdfBelow(mu float64, k int) float64 {
	var s float64
	for i := 0; i < k; i++ {
		s += math.Exp(float64(i)*math.Log(mu) - mu - lgamma(float64(i)+1))
	}
	return s
}

// binomialCI is the Clopper–Pearson 95 % interval for a proportion from k
// successes in n trials.
func binomialCI(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	cdf := func(p float64, upTo int) float64 { // P(X ≤ upTo)
		var s float64
		for i := 0; i <= upTo; i++ {
			s += math.Exp(lgamma(float64(n)+1) - lgamma(float64(i)+1) - lgamma(float64(n-i)+1) +
				float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
		}
		return s
	}
	if k > 0 {
		lo = bisect(0, 1, func(p float64) bool { return 1-cdf(p, k-1) < ciTail })
	}
	hi = 1.0
	if k < n {
		hi = bisect(0, 1, func(p float64) bool { return cdf(p, k) > ciTail })
	}
	return lo, hi
}

// bisect finds the boundary in [a, b] where below turns false (below is
// true at a, false at b).
func bisect(a, b float64, below func(float64) bool) float64 {
	for range 100 {
		m := (a + b) / 2
		if below(m) {
			a = m
		} else {
			b = m
		}
	}
	return (a + b) / 2
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
