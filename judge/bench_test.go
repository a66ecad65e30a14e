package judge

import (
	"math/rand/v2"
	"testing"
)

// Realistic sizes: a 5-minute window of a 20 req/s baseline (6 000
// requests) and a 1 req/s canary (300), 20 histogram buckets.

var sink Result

func BenchmarkProportion(b *testing.B) {
	cases := []struct {
		name             string
		canary, baseline Counts
	}{
		{"healthy", Counts{2, 300}, Counts{30, 6000}},
		{"faulty", Counts{30, 300}, Counts{30, 6000}},
		{"zero-baseline", Counts{5, 300}, Counts{0, 6000}},
	}
	o := Options{Alpha: 0.001, MinEffect: 1.5}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				sink = Proportion(c.canary, c.baseline, o)
			}
		})
	}
}

func BenchmarkProportionAbove(b *testing.B) {
	o := Options{Alpha: 0.001}
	for b.Loop() {
		sink = ProportionAbove(Counts{12, 300}, 0.03, o)
	}
}

func BenchmarkLatency(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	base := sampleBuckets(rng, 6000, 0.1, 0.5)
	cases := []struct {
		name   string
		canary []Bucket
	}{
		{"healthy", sampleBuckets(rng, 300, 0.1, 0.5)},
		{"slow", sampleBuckets(rng, 300, 0.3, 0.5)},
	}
	o := Options{Alpha: 0.001, MinEffect: 2}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				sink = Latency(c.canary, base, 0.99, o)
			}
		})
	}
}

// BenchmarkProportionInsufficient covers the needed-requests search.
func BenchmarkProportionInsufficient(b *testing.B) {
	o := Options{Alpha: 0.001, MinEffect: 1.5}
	for b.Loop() {
		sink = Proportion(Counts{1, 1}, Counts{30, 6000}, o)
	}
}
