package judge

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// The judge runs at every evaluation of every judge trigger: its cost per
// call is bounded (issue 11: at most 20 µs, also when the result is
// insufficient and the needed request count is searched). Realistic sizes:
// a 5-minute window of a 20 req/s baseline (6 000 requests) and a canary of
// 1 req/s (300), 20 histogram buckets; and the extremes that make the
// searches long.
//
// Besides ns/op (wall time, which a loaded machine inflates), each benchmark
// reports cpu-ns/op: the process's CPU time per call.

var sink Result

// loop runs f b.N times and reports its CPU time per call.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkProportion(b *testing.B) {
	cases := []struct {
		name             string
		canary, baseline Counts
		o                Options
	}{
		{"healthy", Counts{2, 300}, Counts{30, 6000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"faulty", Counts{30, 300}, Counts{30, 6000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"zero-baseline", Counts{5, 300}, Counts{0, 6000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"500 req/s", Counts{750, 150000}, Counts{3000, 600000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"decrease", Counts{55, 60}, Counts{5800, 6000}, Options{Alpha: 0.001, MinEffect: 1.5, Direction: Decrease}},
		// Insufficient: the needed-requests search.
		{"insufficient/one request", Counts{1, 1}, Counts{30, 6000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"insufficient/no traffic", Counts{0, 0}, Counts{30, 6000}, Options{Alpha: 1e-6, MinEffect: 1.5}},
		{"insufficient/half-bad baseline", Counts{1, 2}, Counts{3000, 6000}, Options{Alpha: 0.001, MinEffect: 1.5}},
		{"insufficient/effect at minEffect", Counts{1, 2}, Counts{300, 6000}, Options{Alpha: 0.001, MinEffect: 10}},
		{"insufficient/effect just past minEffect", Counts{1, 2}, Counts{290, 6000}, Options{Alpha: 0.001, MinEffect: 10}},
		{"insufficient/huge baseline", Counts{0, 1}, Counts{1, 8e15}, Options{Alpha: 1e-9, MinEffect: 2}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			loop(b, func() { sink = Proportion(c.canary, c.baseline, c.o) })
		})
	}
}

func BenchmarkProportionAbove(b *testing.B) {
	cases := []struct {
		name   string
		canary Counts
		o      Options
	}{
		{"ceiling", Counts{12, 300}, Options{Alpha: 0.001}},
		{"500 req/s", Counts{4500, 150000}, Options{Alpha: 0.001}},
		{"insufficient/one request", Counts{1, 1}, Options{Alpha: 1e-9}},
		{"insufficient/at the ceiling", Counts{1, 33}, Options{Alpha: 1e-9}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			loop(b, func() { sink = ProportionAbove(c.canary, 0.03, c.o) })
		})
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
		{"insufficient/one request", sampleBuckets(rng, 1, 0.3, 0.5)},
		{"insufficient/three requests", sampleBuckets(rng, 3, 0.1, 0.5)},
	}
	o := Options{Alpha: 0.001, MinEffect: 2}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			loop(b, func() { sink = Latency(c.canary, base, 0.99, o) })
		})
	}
}

// BenchmarkSequential is a sequential judge's cost per evaluation: the
// window's point estimate (observe) and one interval added to the evidence
// (decide).
func BenchmarkSequential(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	base, canary := sampleBuckets(rng, 6000, 0.1, 0.5), sampleBuckets(rng, 300, 0.3, 0.5)
	o := Options{Alpha: 0.01, MinEffect: 1.5}
	b.Run("proportion", func(b *testing.B) {
		var e Evidence
		e.Begin()
		loop(b, func() {
			sink = ProportionEstimate(Counts{2, 300}, Counts{30, 6000}, o)
			e.Add(Counts{1, 30}, Counts{3, 600}, SeqTest{MinEffect: 1.5})
			_ = e.Suffices(o.Alpha)
		})
	})
	b.Run("above", func(b *testing.B) {
		var e Evidence
		e.Begin()
		loop(b, func() {
			sink = ProportionAboveEstimate(Counts{2, 300}, 0.03, o)
			e.Add(Counts{1, 30}, Counts{}, SeqTest{Above: 0.03})
			_ = e.Suffices(o.Alpha)
		})
	})
	b.Run("latency", func(b *testing.B) {
		var e Evidence
		e.Begin()
		le, cum := Cumulative(canary)
		ble, bcum := Cumulative(base)
		loop(b, func() {
			sink = LatencyEstimate(canary, base, 0.99, Options{Alpha: 0.001, MinEffect: 2})
			e.SetBound(sink.TailBound)
			e.AddTail(le, cum, ble, bcum)
			_ = e.Suffices(o.Alpha)
		})
	})
}
