package judge

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// relErr is |a−b| / max(|a|, |b|), 0 when equal.
func relErr(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / max(math.Abs(a), math.Abs(b))
}

// refBinomPMF is the binomial pmf by lgamma, for moderate n.
func refBinomPMF(n, k int, p float64) float64 {
	return math.Exp(lgam(float64(n+1)) - lgam(float64(k+1)) - lgam(float64(n-k+1)) +
		float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// refBinomUpper is P(X ≥ k) by direct summation.
func refBinomUpper(n, k int, p float64) float64 {
	var s float64
	for i := n; i >= max(k, 0); i-- { // small terms first
		s += refBinomPMF(n, i, p)
	}
	return s
}

// refBinomLower is P(X ≤ k) by direct summation.
func refBinomLower(n, k int, p float64) float64 {
	var s float64
	for i := 0; i <= min(k, n); i++ {
		s += refBinomPMF(n, i, p)
	}
	return s
}

// refHyperUpper is P(X ≥ k) for the hypergeometric, in exact rationals.
func refHyperUpper(N, K, n, k int64) float64 { return refHyperRange(N, K, n, max(k, 0), min(n, K)) }

// refHyperLower is P(X ≤ k) for the hypergeometric, in exact rationals.
func refHyperLower(N, K, n, k int64) float64 { return refHyperRange(N, K, n, 0, min(k, n, K)) }

func refHyperRange(N, K, n, from, to int64) float64 {
	num := new(big.Int)
	for i := from; i <= to; i++ {
		if n-i > N-K {
			continue
		}
		t := new(big.Int).Binomial(K, i)
		t.Mul(t, new(big.Int).Binomial(N-K, n-i))
		num.Add(num, t)
	}
	f, _ := new(big.Rat).SetFrac(num, new(big.Int).Binomial(N, n)).Float64()
	return f
}

func TestLogBeta(t *testing.T) {
	// B(2, n) = 1/(n(n+1)) exactly; lgamma differences lose digits there.
	if got, want := logBeta(2, 1e6), -math.Log(1e6)-math.Log(1e6+1); relErr(got, want) > 1e-15 {
		t.Errorf("logBeta(2, 1e6) = %v, want %v", got, want)
	}
	for _, c := range [][2]float64{{0.5, 0.5}, {1, 1}, {3, 7}, {9.5, 10}, {12, 3}, {40, 55}, {1e6, 1e6}} {
		want := lgam(c[0]) + lgam(c[1]) - lgam(c[0]+c[1])
		if got := logBeta(c[0], c[1]); math.Abs(got-want) > 1e-12*max(1, math.Abs(want)) {
			t.Errorf("logBeta(%v, %v) = %v, want %v", c[0], c[1], got, want)
		}
	}
	if got, want := logBeta(1, 1), 0.0; got != want {
		t.Errorf("logBeta(1, 1) = %v", got)
	}
}

func TestBetaTailsKnown(t *testing.T) {
	tests := []struct{ a, b, x, want float64 }{
		{1, 1, 0.3, 0.3},                  // uniform
		{2, 2, 0.5, 0.5},                  // symmetric
		{50, 50, 0.5, 0.5},                // symmetric, continued fraction
		{5000, 5000, 0.5, 0.5},            // symmetric, quadrature
		{1, 3, 0.2, 1 - math.Pow(0.8, 3)}, // I_x(1, b) = 1 − (1−x)^b
		{4, 1, 0.7, math.Pow(0.7, 4)},     // I_x(a, 1) = x^a
	}
	for _, tt := range tests {
		lo, hi := betaTails(tt.a, tt.b, tt.x)
		if relErr(lo, tt.want) > 1e-12 || relErr(hi, 1-tt.want) > 1e-12 {
			t.Errorf("betaTails(%v, %v, %v) = %v, %v; want %v", tt.a, tt.b, tt.x, lo, hi, tt.want)
		}
	}
}

// TestBinomialTailsBySummation checks the incomplete-beta tails against
// direct summation, including deep tails (relative error).
func TestBinomialTailsBySummation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 600 {
		n := 1 + rng.IntN(3000)
		k := rng.IntN(n + 1)
		p := math.Pow(10, -4*rng.Float64())
		if got, want := binomUpper(float64(n), float64(k), p), refBinomUpper(n, k, p); want > 1e-280 && relErr(got, want) > 1e-9 {
			t.Fatalf("binomUpper(%d, %d, %v) = %v, want %v", n, k, p, got, want)
		}
		if got, want := binomLower(float64(n), float64(k), p), refBinomLower(n, k, p); want > 1e-280 && relErr(got, want) > 1e-9 {
			t.Fatalf("binomLower(%d, %d, %v) = %v, want %v", n, k, p, got, want)
		}
	}
	// Quadrature regime (both shape parameters > 3000).
	for _, c := range [][3]int{{20000, 5000, 0}, {20000, 10300, 0}, {9000, 3100, 0}, {12000, 6400, 0}} {
		n, k, p := c[0], c[1], 0.25
		if c[1] > 6000 {
			p = 0.5
		}
		if got, want := binomUpper(float64(n), float64(k), p), refBinomUpper(n, k, p); relErr(got, want) > 1e-9 {
			t.Errorf("binomUpper(%d, %d, %v) = %v, want %v", n, k, p, got, want)
		}
	}
}

func TestBinomialTailEdges(t *testing.T) {
	tests := []struct {
		name      string
		got, want float64
	}{
		{"k ≤ 0", binomUpper(10, 0, 0.3), 1},
		{"k > n", binomUpper(10, 11, 0.3), 0},
		{"p = 0", binomUpper(10, 1, 0), 0},
		{"p = 1", binomUpper(10, 10, 1), 1},
		{"all", binomUpper(10, 10, 0.5), math.Pow(0.5, 10)},
		{"lower k ≥ n", binomLower(10, 10, 0.3), 1},
		{"lower k < 0", binomLower(10, -1, 0.3), 0},
		{"lower none", binomLower(10, 0, 0.5), math.Pow(0.5, 10)},
		// Poisson limit: Binomial(1e15, 1e-14) ≈ Poisson(10); P(X ≥ 20).
		{"poisson limit", binomUpper(1e15, 20, 1e-14), 0.0034543419758568117},
		// Binomial(1e9, ½): P(X ≥ n/2 + 3σ) ≈ normal tail 1.3499e-3 (skew 0).
		{"normal limit", binomUpper(1e9, 5e8+3*math.Sqrt(2.5e8)+0.5, 0.5), normalUpper(3)},
	}
	for _, tt := range tests {
		if relErr(tt.got, tt.want) > 1e-6 {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestFisherExact checks the one-sided Fisher test against exact rationals
// and well-known tables.
func TestFisherExact(t *testing.T) {
	tests := []struct {
		name       string
		N, K, n, k float64
		want       float64
	}{
		// Fisher's tea tasting: 3 of 4 cups right, one-sided p = 17/70.
		{"tea 3/1 vs 1/3", 8, 4, 4, 3, 17.0 / 70},
		{"tea 4/0 vs 0/4", 8, 4, 4, 4, 1.0 / 70},
		{"k below support", 8, 4, 4, 0, 1},
		{"k above support", 8, 4, 4, 5, 0},
	}
	for _, tt := range tests {
		if got := hyperUpper(tt.N, tt.K, tt.n, tt.k); relErr(got, tt.want) > 1e-12 {
			t.Errorf("%s: hyperUpper = %v, want %v", tt.name, got, tt.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for range 600 {
		N := int64(2 + rng.IntN(300))
		K, n := rng.Int64N(N+1), rng.Int64N(N+1)
		k := rng.Int64N(n + 1)
		want := refHyperUpper(N, K, n, k)
		if got := hyperUpper(float64(N), float64(K), float64(n), float64(k)); want > 1e-280 && relErr(got, want) > 1e-10 {
			t.Fatalf("hyperUpper(%d, %d, %d, %d) = %v, want %v", N, K, n, k, got, want)
		}
		wantLo := refHyperLower(N, K, n, k)
		if got := hyperLower(float64(N), float64(K), float64(n), float64(k)); wantLo > 1e-280 && relErr(got, wantLo) > 1e-10 {
			t.Fatalf("hyperLower(%d, %d, %d, %d) = %v, want %v", N, K, n, k, got, wantLo)
		}
	}
}

func TestInvBetaLower(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	for range 3000 {
		a := math.Round(math.Exp(rng.Float64()*11)) + 1
		b := math.Round(math.Exp(rng.Float64()*11)) + 1
		p := math.Pow(10, -8*rng.Float64())
		x := invBetaLower(p, a, b)
		if lo, _ := betaTails(a, b, x); relErr(lo, p) > 1e-6 {
			t.Fatalf("I_x(%v, %v) at invBetaLower(%v) = %v", a, b, p, lo)
		}
	}
	for _, c := range [][3]float64{{0.5, 0.5, 0.01}, {0.3, 5, 0.2}, {4, 0.7, 0.001}, {1, 300, 0.0005}} {
		x := invBetaLower(c[2], c[0], c[1])
		if lo, _ := betaTails(c[0], c[1], x); relErr(lo, c[2]) > 1e-6 {
			t.Errorf("I_x(%v, %v) at invBetaLower(%v) = %v", c[0], c[1], c[2], lo)
		}
	}
	if x := invBetaLower(0.001, 1, 1); relErr(x, 0.001) > 1e-9 {
		t.Errorf("uniform quantile = %v", x)
	}
}

func TestClopperPearson(t *testing.T) {
	// Closed forms: k = 0 gives [0, 1 − tail^(1/n)], k = n gives [tail^(1/n), 1].
	lo, hi := clopperPearson(0, 10, 0.025)
	if lo != 0 || relErr(hi, 1-math.Pow(0.025, 0.1)) > 1e-9 {
		t.Errorf("k=0: [%v, %v]", lo, hi)
	}
	lo, hi = clopperPearson(10, 10, 0.025)
	if hi != 1 || relErr(lo, math.Pow(0.025, 0.1)) > 1e-9 {
		t.Errorf("k=n: [%v, %v]", lo, hi)
	}
	// Textbook: 5 of 20 at 95 %: [0.0866, 0.4910].
	lo, hi = clopperPearson(5, 20, 0.025)
	if math.Abs(lo-0.0866) > 1e-4 || math.Abs(hi-0.4910) > 1e-4 {
		t.Errorf("5/20: [%v, %v]", lo, hi)
	}
}

func TestNormal(t *testing.T) {
	if got := normalUpper(1.959963984540054); relErr(got, 0.025) > 1e-12 {
		t.Errorf("normalUpper = %v", got)
	}
	if got := normalQuantileUpper(0.0005); math.Abs(got-3.2905267314919) > 1e-9 {
		t.Errorf("normalQuantileUpper = %v", got)
	}
}
