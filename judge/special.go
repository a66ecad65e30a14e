package judge

import (
	"math"
	"sync"
)

// Special functions: log Beta, the regularized incomplete beta function and
// its inverse, and the normal tail. They are written for accuracy in the
// tails (p-values of 1e-12 keep their relative precision) and for bounded
// cost at any argument size (counts up to 2^53).

const lnSqrt2Pi = 0.91893853320467274178 // ln √(2π)

// lgam is ln |Γ(z)|.
func lgam(z float64) float64 {
	v, _ := math.Lgamma(z)
	return v
}

// stirlingCorr is ln Γ(z) − ((z−½) ln z − z + ln √(2π)) for z ≥ 10, to
// about 1e-15 absolute.
func stirlingCorr(z float64) float64 {
	z2 := 1 / (z * z)
	return (1.0/12 + z2*(-1.0/360+z2*(1.0/1260+z2*(-1.0/1680+z2/1188)))) / z
}

// logBeta is ln B(a, b) for a, b > 0, free of the cancellation that
// lgamma(a)+lgamma(b)−lgamma(a+b) suffers for large arguments.
func logBeta(a, b float64) float64 {
	p, q := min(a, b), max(a, b)
	s := p + q
	switch {
	case p >= 10:
		corr := stirlingCorr(p) + stirlingCorr(q) - stirlingCorr(s)
		return -0.5*math.Log(q) + lnSqrt2Pi + corr + (p-0.5)*math.Log(p/s) + q*math.Log1p(-p/s)
	case q >= 10:
		corr := stirlingCorr(q) - stirlingCorr(s)
		return lgam(p) + corr + p - p*math.Log(s) + (q-0.5)*math.Log1p(-p/s)
	default:
		return lgam(p) + lgam(q) - lgam(s)
	}
}

// logFront is ln(x^a (1−x)^b / B(a, b)), the prefactor of the incomplete
// beta function, for 0 < x < 1.
func logFront(a, b, x float64) float64 {
	if min(a, b) < 10 {
		return a*math.Log(x) + b*math.Log1p(-x) - logBeta(a, b)
	}
	// Stirling form: a·ln(x/(a/s)) + b·ln((1−x)/(b/s)) + ½ ln(ab/s) − ln √(2π)
	// − corrections, each logarithm split so that it keeps its precision.
	s := a + b
	corr := stirlingCorr(a) + stirlingCorr(b) - stirlingCorr(s)
	return a*(math.Log(x)+math.Log1p(b/a)) + b*(math.Log1p(-x)+math.Log1p(a/b)) +
		0.5*math.Log(a*b/s) - lnSqrt2Pi - corr
}

// quadSwitch is the size above which both shape parameters make the
// continued fraction slow (O(√size) terms) and Gauss–Legendre quadrature of
// the density is used instead (Numerical Recipes 3rd ed., §6.4).
const quadSwitch = 3000

// betaTails returns lower = I_x(a, b) and upper = 1 − I_x(a, b). The one of
// the two that is small is computed directly, so it keeps its relative
// precision; the other is its complement. a, b > 0.
func betaTails(a, b, x float64) (lower, upper float64) {
	switch {
	case x <= 0:
		return 0, 1
	case x >= 1:
		return 1, 0
	case a > quadSwitch && b > quadSwitch:
		return betaQuad(a, b, x)
	case x < (a+1)/(a+b+2):
		lower = math.Exp(logFront(a, b, x)) * betaCF(a, b, x) / a
		lower = min(max(lower, 0), 1)
		return lower, 1 - lower
	default:
		upper = math.Exp(logFront(b, a, 1-x)) * betaCF(b, a, 1-x) / b
		upper = min(max(upper, 0), 1)
		return 1 - upper, upper
	}
}

// betaCF evaluates the continued fraction of I_x(a, b) by the modified Lentz
// method; it converges quickly for x < (a+1)/(a+b+2).
func betaCF(a, b, x float64) float64 {
	const (
		tiny = 1e-300
		eps  = 1e-16
	)
	maxIter := 200 + int(4*math.Sqrt(min(max(a, b), quadSwitch*1e4)))
	qab, qap, qam := a+b, a+1, a-1
	c := 1.0
	d := 1 - qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// gaussLegendre holds nodes and weights of an n-point Gauss–Legendre rule
// on [0, 1].
type gaussLegendre struct{ x, w []float64 }

var glRule = sync.OnceValue(func() gaussLegendre { return newGaussLegendre(48) })

func newGaussLegendre(n int) gaussLegendre {
	g := gaussLegendre{x: make([]float64, n), w: make([]float64, n)}
	for i := range n {
		// Newton on P_n from the Chebyshev-like initial guess.
		z := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		var dp float64
		for range 100 {
			p0, p1 := 1.0, z
			for k := 2; k <= n; k++ {
				p0, p1 = p1, ((2*float64(k)-1)*z*p1-(float64(k)-1)*p0)/float64(k)
			}
			dp = float64(n) * (z*p1 - p0) / (z*z - 1)
			dz := p1 / dp
			z -= dz
			if math.Abs(dz) < 1e-15 {
				break
			}
		}
		g.x[i] = (1 - z) / 2
		g.w[i] = 1 / ((1 - z*z) * dp * dp)
	}
	return g
}

// betaQuad integrates the Beta(a, b) density from x toward the far tail,
// over a range of at least five (usually ten) standard deviations.
func betaQuad(a, b, x float64) (lower, upper float64) {
	s := a + b
	mu := a / s
	sd := math.Sqrt(a * b / (s * s * (s + 1)))
	var xu float64
	if x > mu {
		xu = min(1, max(mu+10*sd, x+5*sd))
	} else {
		xu = max(0, min(mu-10*sd, x-5*sd))
	}
	// ln density(u) = ln density(mu) + (a−1)·ln(u/mu) + (b−1)·ln((1−u)/(1−mu)).
	k := logFront(a, b, mu) - math.Log(mu) - math.Log1p(-mu)
	g := glRule()
	var sum float64
	for i, t := range g.x {
		u := x + (xu-x)*t
		if u > 0 && u < 1 {
			d := u - mu
			sum += g.w[i] * math.Exp(k+(a-1)*math.Log1p(d/mu)+(b-1)*math.Log1p(-d/(1-mu)))
		}
	}
	tail := min(math.Abs(sum*(xu-x)), 1)
	if x > mu {
		return 1 - tail, tail
	}
	return tail, 1 - tail
}

// betaQuantile is invBetaLower for the bounds of a confidence interval:
// when both a and b exceed quadSwitch it is the asymptotic first guess,
// whose relative error there is below 1e-4 (measured for p from 1e-6 to ½
// and a, b from 3 000 to 10^9) — far inside the interval it bounds, while
// each Halley step would cost a quadrature of the density.
func betaQuantile(p, a, b float64) float64 {
	if a > quadSwitch && b > quadSwitch && p > 0 && p < 1 {
		return min(max(invBetaGuess(p, a, b), 0), 1)
	}
	return invBetaLower(p, a, b)
}

// invBetaLower returns x with I_x(a, b) = p, for 0 < p < 1 (Numerical
// Recipes 3rd ed. invbetai: an asymptotic first guess, then Halley steps).
func invBetaLower(p, a, b float64) float64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1
	}
	x := invBetaGuess(p, a, b)
	a1, b1 := a-1, b-1
	lnB := logBeta(a, b) // the density only steers the steps; its precision is not critical
	for j := range 30 {
		if x <= 0 || x >= 1 || math.IsNaN(x) {
			break
		}
		lower, _ := betaTails(a, b, x)
		err := lower - p
		t := math.Exp(a1*math.Log(x) + b1*math.Log1p(-x) - lnB)
		if t == 0 || math.IsInf(t, 0) {
			break
		}
		u := err / t
		step := u / (1 - 0.5*min(1, u*(a1/x-b1/(1-x))))
		x -= step
		if x <= 0 {
			x = 0.5 * (x + step)
		}
		if x >= 1 {
			x = 0.5 * (x + step + 1)
		}
		if math.Abs(step) < 1e-6*min(x, 1-x) && j > 0 { // cubic convergence: the error is now far smaller
			break
		}
	}
	if math.IsNaN(x) {
		return 0
	}
	return min(max(x, 0), 1)
}

// invBetaGuess is the first guess of invBetaLower (Abramowitz & Stegun
// 26.5.22 for a, b ≥ 1).
func invBetaGuess(p, a, b float64) float64 {
	var x float64
	if a >= 1 && b >= 1 {
		pp := p
		if p >= 0.5 {
			pp = 1 - p
		}
		t := math.Sqrt(-2 * math.Log(pp))
		x = (2.30753+t*0.27061)/(1+t*(0.99229+t*0.04481)) - t
		if p < 0.5 {
			x = -x
		}
		al := (x*x - 3) / 6
		h := 2 / (1/(2*a-1) + 1/(2*b-1))
		w := x*math.Sqrt(al+h)/h - (1/(2*b-1)-1/(2*a-1))*(al+5.0/6-2/(3*h))
		x = a / (a + b*math.Exp(2*w))
	} else {
		lna, lnb := math.Log(a/(a+b)), math.Log(b/(a+b))
		t := math.Exp(a*lna) / a
		u := math.Exp(b*lnb) / b
		w := t + u
		if p < t/w {
			x = math.Pow(a*w*p, 1/a)
		} else {
			x = 1 - math.Pow(b*w*(1-p), 1/b)
		}
	}
	return x
}

// normalUpper is P(Z > z) for a standard normal Z.
func normalUpper(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantileUpper is z with P(Z > z) = p, for 0 < p < 1.
func normalQuantileUpper(p float64) float64 { return math.Sqrt2 * math.Erfcinv(2*p) }
