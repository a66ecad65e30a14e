package judge

import "math"

// Exact discrete tails on integer-valued float64 counts.

// binomUpper is P(X ≥ k) for X ~ Binomial(n, p).
func binomUpper(n, k, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lower, _ := betaTails(k, n-k+1, p) // P(X ≥ k) = I_p(k, n−k+1)
	return lower
}

// binomLower is P(X ≤ k) for X ~ Binomial(n, p).
func binomLower(n, k, p float64) float64 {
	switch {
	case k < 0:
		return 0
	case k >= n:
		return 1
	case p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	_, upper := betaTails(k+1, n-k, p) // P(X ≤ k) = 1 − I_p(k+1, n−k)
	return upper
}

// clopperPearson returns the exact two-sided interval for a binomial
// proportion from k successes in n trials, each tail of probability tail.
func clopperPearson(k, n, tail float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	lo, hi = 0, 1
	if k > 0 {
		lo = betaQuantile(tail, k, n-k+1)
	}
	if k < n {
		hi = 1 - betaQuantile(tail, n-k, k+1)
	}
	return lo, hi
}

// logChoose is ln C(n, k) for integers 0 ≤ k ≤ n.
func logChoose(n, k float64) float64 {
	if k <= 0 || k >= n {
		return 0
	}
	return -math.Log(n+1) - logBeta(n-k+1, k+1)
}

// hyperMaxVariance bounds the exact summation of hypergeometric tails: a
// tail needs about ten standard deviations of terms, so above this variance
// (a thousand requests of standard deviation, i.e. hundreds of thousands of
// bad requests on both sides) the normal approximation with continuity
// correction is used; its relative error there is below 1 %.
const hyperMaxVariance = 1e6

// hyperUpper is P(X ≥ k) for X hypergeometric: n draws without replacement
// from N items of which K are marked (the one-sided Fisher exact test).
func hyperUpper(N, K, n, k float64) float64 {
	return hyperTail(N, K, n, k, true)
}

// hyperLower is P(X ≤ k) for X hypergeometric as in hyperUpper.
func hyperLower(N, K, n, k float64) float64 {
	return hyperTail(N, K, n, k, false)
}

func hyperTail(N, K, n, k float64, upper bool) float64 {
	kmin, kmax := max(0, n-(N-K)), min(n, K)
	if upper {
		switch {
		case k <= kmin:
			return 1
		case k > kmax:
			return 0
		}
	} else {
		switch {
		case k < kmin:
			return 0
		case k >= kmax:
			return 1
		}
	}
	mean := n * K / N
	variance := mean * (N - K) / N * (N - n) / (N - 1)
	if variance > hyperMaxVariance {
		if upper {
			return normalUpper((k - 0.5 - mean) / math.Sqrt(variance))
		}
		return normalUpper((mean - k - 0.5) / math.Sqrt(variance))
	}
	mode := math.Floor((n + 1) * (K + 1) / (N + 2))
	// Sum the side of k that lies away from the mode, where terms fall off.
	if upper {
		if k > mode {
			return hyperSum(N, K, n, k, kmin, kmax, +1)
		}
		return 1 - hyperSum(N, K, n, k-1, kmin, kmax, -1)
	}
	if k < mode {
		return hyperSum(N, K, n, k, kmin, kmax, -1)
	}
	return 1 - hyperSum(N, K, n, k+1, kmin, kmax, +1)
}

// hyperSum adds pmf(k), pmf(k+dir), ... until the terms vanish or the
// support ends.
func hyperSum(N, K, n, k, kmin, kmax float64, dir int) float64 {
	if k < kmin || k > kmax {
		return 0
	}
	term := math.Exp(logChoose(K, k) + logChoose(N-K, n-k) - logChoose(N, n))
	sum := term
	for i := k; ; {
		if dir > 0 {
			if i >= kmax {
				break
			}
			term *= (K - i) * (n - i) / ((i + 1) * (N - K - n + i + 1))
			i++
		} else {
			if i <= kmin {
				break
			}
			term *= i * (N - K - n + i) / ((K - i + 1) * (n - i + 1))
			i--
		}
		sum += term
		if term <= sum*1e-17 {
			break
		}
	}
	return min(sum, 1)
}
