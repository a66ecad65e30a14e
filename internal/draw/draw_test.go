package draw

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMeans checks every branch of the draws against its mean and
// variance: 4000 draws put the sample mean within 5 standard errors.
func TestMeans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	mean := func(f func() float64) float64 {
		s := 0.0
		for range 4000 {
			s += f()
		}
		return s / 4000
	}
	for _, m := range []float64{0.5, 20, 800} {
		if got := mean(func() float64 { return Poisson(r, m) }); math.Abs(got-m) > 5*math.Sqrt(m/4000) {
			t.Errorf("Poisson(%g): mean %g", m, got)
		}
	}
	for _, c := range []struct{ n, p float64 }{{100, 0.05}, {400, 0.09}, {40, 0.5}, {1000, 0.3}} {
		want, sd := c.n*c.p, math.Sqrt(c.n*c.p*(1-c.p)/4000)
		if got := mean(func() float64 { return Binomial(r, c.n, c.p) }); math.Abs(got-want) > 5*sd {
			t.Errorf("Binomial(%g, %g): mean %g, want %g", c.n, c.p, got, want)
		}
	}
	if Binomial(r, 7, 1) != 7 || Binomial(r, 7, 0) != 0 || Binomial(r, 0, 0.5) != 0 || Poisson(r, -1) != 0 {
		t.Error("degenerate draws")
	}
}
