package judge

import (
	"math"
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
