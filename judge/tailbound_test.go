package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLatencySmallBaselineTail: a baseline of 43 requests, none above 0.1 s,
// does not show that its p99 is 0.1 s (8 % of requests above 0.1 s is
// likely enough to give that). A canary of the same distribution with 7 of
// 96 above 0.1 s must not be judged slower — the case of a rollout's old
// revision at 0.5 requests per second, which judged a healthy new revision
// 2.3× slower at p = 1e-5 when the tail test took the baseline's sample
// p99 bucket as its true one.
func TestLatencySmallBaselineTail(t *testing.T) {
	bounds := []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, math.Inf(1)}
	mk := func(cum ...float64) []Bucket {
		out := make([]Bucket, len(bounds))
		for i := range bounds {
			out[i] = Bucket{Le: bounds[i], Count: cum[min(i, len(cum)-1)]}
		}
		return out
	}
	baseline := mk(6, 20, 43)
	canary := mk(8, 52, 89, 96)
	r := Latency(canary, baseline, 0.99, Options{Alpha: 0.001, MinEffect: 2})
	if r.Holds || r.TailP < 0.5 || !math.IsInf(r.TailBound, 1) {
		t.Fatalf("small baseline judged slower: %s (tail bound %v, p %v)", r.Detail, r.TailBound, r.TailP)
	}
	// The same shapes with 100 times the requests place the baseline's
	// p99 (and show the canary's heavier tail).
	big := func(bs []Bucket) []Bucket {
		out := make([]Bucket, len(bs))
		for i, b := range bs {
			out[i] = Bucket{Le: b.Le, Count: 100 * b.Count}
		}
		return out
	}
	r = Latency(big(canary), big(baseline), 0.99, Options{Alpha: 0.001, MinEffect: 2})
	if r.TailBound != 0.1 || r.TailP > 1e-6 {
		t.Fatalf("large baseline: tail bound %v p %v: %s", r.TailBound, r.TailP, r.Detail)
	}
}

// TestTailTestBisectionIsTheScan: the bisection finds the bound the
// bucket-by-bucket scan finds (the lowest qualifying one), on random
// histograms from tiny to huge baselines, with empty and full buckets.
func TestTailTestBisectionIsTheScan(t *testing.T) {
	scan := func(c, b hist, q, alpha float64) tailResult {
		nb, nc := b.total(), c.total()
		for j := 0; j < len(b.cum)-1; j++ {
			above := nb - b.cum[j]
			if _, hi := clopperPearson(above, nb, alpha); hi > 1-q {
				continue
			}
			k := nc - c.cum[j]
			return tailResult{p: binomUpper(nc, k, 1-q), bound: b.le[j], canaryAbove: k, baselineAbove: above}
		}
		return tailResult{p: 1, bound: math.Inf(1)}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(le []float64, n float64) hist {
		cum := make([]float64, len(le))
		left := n
		for i := range cum {
			take := math.Round(left * rnd.Float64() * rnd.Float64())
			if i == len(cum)-1 {
				take = left
			}
			left -= take
			cum[i] = n - left
		}
		return hist{le: le, cum: cum, n: perBucket(cum)}
	}
	le := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.Inf(1)}
	for i := range 3000 {
		nb := math.Round(math.Pow(10, 7*rnd.Float64()))
		if i%10 == 0 {
			nb = 0
		}
		b, c := random(le, nb), random(le, math.Round(math.Pow(10, 5*rnd.Float64())))
		q := []float64{0.5, 0.9, 0.95, 0.99, 0.999}[i%5]
		alpha := []float64{0.001, 0.01, 0.05}[i%3]
		if got, want := tailTest(c, b, q, alpha), scan(c, b, q, alpha); got != want {
			t.Fatalf("case %d (q %v, alpha %v, baseline %v, canary %v): bisection %+v, scan %+v", i, q, alpha, b.cum, c.cum, got, want)
		}
	}
}
