package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// binomPMF is P(X = k) for X ~ Binomial(n, p), by logarithms.
func binomPMF(n, k int, p float64) float64 {
	if p <= 0 {
		if k == 0 {
			return 1
		}
		return 0
	}
	if p >= 1 {
		if k == n {
			return 1
		}
		return 0
	}
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// TestEvidenceLikelihoodRatio: each component multiplies by the ratio of
// the binomial probabilities of the interval's x of m under π1 (log-odds
// shifted by ln ρ_j) and under π0.
func TestEvidenceLikelihoodRatio(t *testing.T) {
	var e Evidence
	e.Begin()
	// Two-sample, minEffect 1.5: π0 = 1.5·150 / (1.5·150 + 600).
	e.Add(Counts{7, 150}, Counts{5, 600}, SeqTest{MinEffect: 1.5})
	pi0 := 1.5 * 150 / (1.5*150 + 600)
	for j := range gridSize {
		rho := math.Pow(gridRatio, float64(j+1))
		pi1 := pi0 * rho / (1 - pi0 + pi0*rho)
		want := math.Log(binomPMF(12, 7, pi1) / binomPMF(12, 7, pi0))
		if math.Abs(e.logLR[j]-want) > 1e-9 {
			t.Fatalf("component %d: %v, want %v", j, e.logLR[j], want)
		}
	}
	// The run's e-value is 1/(1·2) times the grid's mean ratio.
	var mean float64
	for j := range gridSize {
		mean += math.Exp(e.logLR[j]) / gridSize
	}
	if got := e.EValue(); math.Abs(got/(mean/2)-1) > 1e-12 {
		t.Fatalf("e-value %v, want %v", got, mean/2)
	}
}

// TestEvidenceFactorUnderIndependentFailures: the model conditions on the
// interval's requests and bad requests and takes the canary's share of the
// bad ones to be binomial (exact when bad requests are Poisson). When each
// request instead fails independently, the canary's count given the total
// is Fisher's noncentral hypergeometric; at the null boundary p_c = f·p_b
// every component's expected factor must still be at most 1, which this
// checks exactly by enumeration over both sides' counts.
func TestEvidenceFactorUnderIndependentFailures(t *testing.T) {
	for _, c := range []struct {
		nc, nb int
		pb, f  float64
	}{{20, 80, 0.005, 1.5}, {20, 80, 0.05, 1.5}, {30, 60, 0.2, 1.5}, {30, 60, 0.3, 2}, {50, 50, 0.1, 1}, {10, 200, 0.02, 1.5}, {40, 40, 0.45, 2}, {40, 40, 0.5, 1}, {5, 300, 0.1, 3}} {
		pc := c.f * c.pb
		pi0 := c.f * float64(c.nc) / (c.f*float64(c.nc) + float64(c.nb))
		for j := range gridSize {
			var ef float64
			for x := 0; x <= c.nc; x++ {
				px := binomPMF(c.nc, x, pc)
				for y := 0; y <= c.nb; y++ {
					var e Evidence
					e.Begin()
					e.add(float64(x), float64(x+y), pi0, false)
					ef += px * binomPMF(c.nb, y, c.pb) * math.Exp(e.logLR[j])
				}
			}
			if ef > 1+1e-9 {
				t.Errorf("n %d/%d, p_b %v, f %v: component %d has expected factor %v > 1", c.nc, c.nb, c.pb, c.f, j, ef)
			}
		}
	}
}

// poissonDraw draws a Poisson variate by inversion (means up to a few
// hundred).
func poissonDraw(r *rand.Rand, mean float64) float64 {
	if mean > 200 {
		return math.Max(0, math.Round(mean+math.Sqrt(mean)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-mean), 0.0, r.Float64()
	for p > l {
		p *= r.Float64()
		k++
	}
	return k
}

// TestEvidenceFalseAlarmOverALife is Ville's inequality at work: canaries
// exactly at the null boundary (errors 1.5 × the baseline's), 4 hours of
// 30 s intervals each, runs begun and ended by a noisy window estimate as
// the hold does (the previous 10 intervals' canary proportion above 1.5 ×
// the baseline's: chosen before the interval's requests are seen). The
// share of lives in which any run's e-value ever reaches 1/α must not
// exceed α.
func TestEvidenceFalseAlarmOverALife(t *testing.T) {
	const (
		lives     = 1500
		intervals = 480
		alpha     = 0.05
		window    = 10
	)
	test := SeqTest{MinEffect: 1.5}
	rng := rand.New(rand.NewPCG(11, 11))
	fired, runs := 0, 0
	for range lives {
		var e Evidence
		var hist [window][4]float64 // canary bad, total, baseline bad, total
		on, proven := false, false
		for i := 0; i < intervals && !proven; i++ {
			var w [4]float64
			for _, h := range hist {
				for k := range w {
					w[k] += h[k]
				}
			}
			worse := i >= window && w[1] > 0 && w[3] > 0 && w[0]/w[1] > 1.5*w[2]/w[3]
			nc, nb := poissonDraw(rng, 150), poissonDraw(rng, 600)
			c := Counts{Bad: poissonDraw(rng, nc*0.015), Total: nc}
			b := Counts{Bad: poissonDraw(rng, nb*0.01), Total: nb}
			switch {
			case worse && !on:
				e.Begin()
				runs++
			case worse:
				e.Add(c, b, test)
				proven = e.Suffices(alpha)
			}
			on = worse
			hist[i%window] = [4]float64{c.Bad, c.Total, b.Bad, b.Total}
		}
		if proven {
			fired++
		}
	}
	rate := float64(fired) / lives
	t.Logf("%d of %d lives at the null boundary proven worse (%.3g; α = %g); %.1f runs a life", fired, lives, rate, alpha, float64(runs)/lives)
	if rate > alpha {
		t.Errorf("false-alarm rate %.3g over a life exceeds α = %g", rate, alpha)
	}
}
