package judge

import (
	"math"
	"testing"
	"time"
)

// fuzzTimeLimit bounds one input's evaluations: generous, since fuzzing
// runs on loaded machines, yet far below what an unbounded loop would take.
const fuzzTimeLimit = time.Second

// checkInvariants fails on a Result that breaks the package's promises.
func checkInvariants(t *testing.T, r Result) {
	t.Helper()
	switch {
	case r.Holds && r.Insufficient:
		t.Fatalf("holds and insufficient: %+v", r)
	case !(r.PValue >= 0 && r.PValue <= 1):
		t.Fatalf("p-value %v: %+v", r.PValue, r)
	case r.Holds && !(r.PValue <= r.Alpha):
		t.Fatalf("holds with p %v > α %v", r.PValue, r.Alpha)
	case r.Detail == "":
		t.Fatalf("empty detail: %+v", r)
	case r.Needed < 0 || math.IsNaN(r.Needed):
		t.Fatalf("needed %v", r.Needed)
	case !math.IsNaN(r.Effect) && !math.IsNaN(r.EffectLow) && r.EffectLow > r.Effect*(1+1e-9):
		t.Fatalf("effect %v below its lower bound %v: %s", r.Effect, r.EffectLow, r.Detail)
	case !math.IsNaN(r.Effect) && !math.IsNaN(r.EffectHigh) && r.EffectHigh < r.Effect*(1-1e-9):
		t.Fatalf("effect %v above its upper bound %v: %s", r.Effect, r.EffectHigh, r.Detail)
	}
	_ = r.Judgement()
}

func FuzzProportion(f *testing.F) {
	f.Add(3.0, 4.0, 1.0, 4.0, 0.0, 0.5, false, 0.03)
	f.Add(5.0, 600.0, 0.0, 6000.0, 1.5, 0.001, false, 0.03)
	f.Add(2.0, 300.0, 300.0, 6000.0, 1.5, 0.01, true, 0.95)
	f.Add(1.2e7, 1e9, 1e7, 1e9, 1.1, 0.001, false, 0.01)
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, false, 0.0)
	f.Add(math.NaN(), -1.0, math.Inf(1), 1e300, -2.0, 0.7, true, 2.0)
	f.Add(4e15, 8e15, 4e15, 8e15, 1e-300, 1e-300, false, 0.5)
	f.Fuzz(func(t *testing.T, cb, ct, bb, bt, minEffect, alpha float64, dec bool, above float64) {
		o := Options{Alpha: alpha, MinEffect: minEffect}
		if dec {
			o.Direction = Decrease
		}
		start := time.Now()
		r := Proportion(Counts{cb, ct}, Counts{bb, bt}, o)
		checkInvariants(t, r)
		checkInvariants(t, ProportionAbove(Counts{cb, ct}, above, o))
		if d := time.Since(start); d > fuzzTimeLimit {
			t.Fatalf("took %v", d)
		}
		// More canary errors never lower the evidence.
		if !dec && r.Canary.Total >= 1 && r.Canary.Bad < r.Canary.Total {
			more := Proportion(Counts{r.Canary.Bad + 1, r.Canary.Total}, r.Baseline, o)
			if more.PValue > r.PValue*(1+1e-6)+1e-300 || (r.Holds && !more.Holds) {
				t.Fatalf("one more canary error: p %v → %v, holds %v → %v", r.PValue, more.PValue, r.Holds, more.Holds)
			}
		}
	})
}

func FuzzLatency(f *testing.F) {
	f.Add([]byte{10, 20, 30, 40, 250}, []byte{100, 150, 200, 240, 250}, 0.99, 2.0, 0.001, 0.005)
	f.Add([]byte{0}, []byte{0}, 0.5, 0.0, 0.5, 0.0)
	f.Add([]byte{255, 0, 3}, []byte{1, 2, 3}, 0.0, -1.0, 0.0, math.Inf(-1))
	// Found by fuzzing: baseline quantile in the +Inf bucket at 10^9 requests.
	f.Add([]byte("0000000000000000000000000000000000000000"), []byte("0000000000000000000000000000000000000001"),
		0.9899999999999984, 11.75, 0.001, 0.005)
	f.Fuzz(func(t *testing.T, c, b []byte, q, minEffect, alpha, le0 float64) {
		les := bounds20()
		les[0] = le0 // any first bound: negative, zero, NaN, ±Inf, out of order
		buckets := func(raw []byte, scale float64) []Bucket {
			var out []Bucket
			for i, v := range raw {
				out = append(out, Bucket{Le: les[i%len(les)], Count: float64(v) * scale})
			}
			return out
		}
		start := time.Now()
		for _, scale := range []float64{1, 1e7} {
			r := Latency(buckets(c, scale), buckets(b, scale*3), q, Options{Alpha: alpha, MinEffect: minEffect})
			checkInvariants(t, r)
		}
		if d := time.Since(start); d > fuzzTimeLimit {
			t.Fatalf("took %v", d)
		}
	})
}

// FuzzEvidence: any counts leave the evidence a number (never NaN), and an
// interval whose canary share is at or below the null's never raises it.
func FuzzEvidence(f *testing.F) {
	f.Add(3.0, 30.0, 1.0, 600.0, 1.5, 0.0, false)
	f.Add(0.0, 1.0, 0.0, 1e15, 1.0, 0.03, true)
	f.Add(math.NaN(), math.Inf(1), -1.0, 0.0, 0.0, 1.0, false)
	f.Add(5e15, 8e15, 1.0, 8e15, 1e300, 0.5, true)
	f.Fuzz(func(t *testing.T, cb, ct, bb, bt, minEffect, above float64, dec bool) {
		var e Evidence
		e.Begin()
		before := e.LogE()
		e.Add(Counts{cb, ct}, Counts{bb, bt}, SeqTest{MinEffect: minEffect, Above: above, Decrease: dec})
		if math.IsNaN(e.LogE()) {
			t.Fatalf("log e-value NaN after %v %v %v %v (f %v, above %v)", cb, ct, bb, bt, minEffect, above)
		}
		_ = e.Describe(0.01, SeqTest{Above: above}, false)
		// No bad canary request in a two-sample increase test is never evidence.
		if !dec && above == 0 && cb == 0 && e.LogE() > before+1e-12 {
			t.Fatalf("no canary error raised the evidence: %v → %v", before, e.LogE())
		}
	})
}
