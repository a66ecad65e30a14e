package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestProportion(t *testing.T) {
	inc := func(alpha, f float64) Options { return Options{Alpha: alpha, MinEffect: f} }
	tests := []struct {
		name             string
		canary, baseline Counts
		o                Options
		holds, insuff    bool
		p                float64 // expected p-value; NaN: not checked
		effect           float64 // expected effect; NaN: not checked
		detail           string  // substring of Detail
	}{
		{name: "tea tasting, Fisher one-sided", canary: Counts{3, 4}, baseline: Counts{1, 4},
			o: inc(0.5, 0), holds: true, p: 17.0 / 70, effect: 3},
		{name: "tea tasting at 5 %", canary: Counts{3, 4}, baseline: Counts{1, 4},
			o: inc(0.05, 0), insuff: true, p: 17.0 / 70, effect: 3, detail: "cannot reach significance"},
		{name: "healthy canary at baseline rate", canary: Counts{2, 300}, baseline: Counts{30, 6000},
			o: inc(0.001, 1.5), p: math.NaN(), effect: (2.0 / 300) / 0.005},
		{name: "canary at 10 % errors", canary: Counts{30, 300}, baseline: Counts{30, 6000},
			o: inc(0.001, 1.5), holds: true, p: math.NaN(), effect: 20},
		{name: "shifted null: conditional binomial", canary: Counts{10, 1000}, baseline: Counts{10, 10000},
			o: inc(0.05, 2), holds: true, p: refBinomUpper(20, 10, 1.0/6), effect: 10},
		{name: "shifted null not rejected", canary: Counts{6, 1000}, baseline: Counts{20, 10000},
			o: inc(0.001, 2), p: refBinomUpper(26, 6, 1.0/6), effect: 3},
		{name: "zero baseline, one canary error", canary: Counts{1, 300}, baseline: Counts{0, 6000},
			o: inc(0.001, 1.5), p: 450.0 / 6450, effect: math.Inf(1)},
		{name: "zero baseline, one error, big baseline, loose alpha", canary: Counts{1, 300}, baseline: Counts{0, 3e6},
			o: inc(0.1, 1.5), p: 450.0 / (450 + 3e6), effect: math.Inf(1), detail: "fewer than 2 bad"},
		{name: "zero baseline, steady canary errors", canary: Counts{5, 600}, baseline: Counts{0, 6000},
			o: inc(0.001, 1.5), holds: true, p: math.Pow(900.0/6900, 5), effect: math.Inf(1)},
		{name: "no errors anywhere", canary: Counts{0, 300}, baseline: Counts{0, 6000},
			o: inc(0.001, 1.5), p: 1, effect: math.NaN()},
		{name: "extrapolated counts round", canary: Counts{29.6, 300.4}, baseline: Counts{30.2, 5999.7},
			o: inc(0.001, 1.5), holds: true, p: math.NaN(), effect: 20},
		{name: "bad above total is clamped", canary: Counts{301, 300}, baseline: Counts{30, 6000},
			o: inc(0.001, 1.5), holds: true, p: math.NaN(), effect: 200},
		{name: "decrease: conversions drop", canary: Counts{2, 300}, baseline: Counts{300, 6000},
			o: Options{Alpha: 0.01, MinEffect: 1.5, Direction: Decrease}, holds: true,
			p: refBinomLower(302, 2, 300.0/9300), effect: (2.0 / 300) / 0.05},
		{name: "decrease: minEffect below 1 means its reciprocal", canary: Counts{2, 300}, baseline: Counts{300, 6000},
			o: Options{Alpha: 0.01, MinEffect: 1 / 1.5, Direction: Decrease}, holds: true,
			p: refBinomLower(302, 2, 300.0/9300), effect: (2.0 / 300) / 0.05},
		{name: "decrease: increase is not worse", canary: Counts{60, 300}, baseline: Counts{600, 6000},
			o: Options{Alpha: 0.01, Direction: Decrease}, p: math.NaN(), effect: 2},
		{name: "decrease: baseline too sparse to decide", canary: Counts{30, 300}, baseline: Counts{30, 6000},
			o: Options{Alpha: 0.01, Direction: Decrease}, insuff: true, p: math.NaN(), effect: 20, detail: "none were counted"},
		{name: "huge counts, real 20 % increase", canary: Counts{1.2e7, 1e9}, baseline: Counts{1e7, 1e9},
			o: inc(0.001, 1.1), holds: true, p: math.NaN(), effect: 1.2},
		{name: "huge counts, below minEffect", canary: Counts{1.2e7, 1e9}, baseline: Counts{1e7, 1e9},
			o: inc(0.001, 1.5), p: math.NaN(), effect: 1.2},
		{name: "NaN canary", canary: Counts{math.NaN(), 300}, baseline: Counts{1, 6000},
			o: inc(0.001, 1.5), insuff: true, p: 1, effect: math.NaN(), detail: "not finite"},
		{name: "Inf baseline", canary: Counts{1, 300}, baseline: Counts{1, math.Inf(1)},
			o: inc(0.001, 1.5), insuff: true, p: 1, detail: "not finite"},
		{name: "negative counts", canary: Counts{-3, 300}, baseline: Counts{1, 6000},
			o: inc(0.001, 1.5), insuff: true, p: 1, detail: "negative"},
		{name: "beyond 2^53", canary: Counts{1, 1e17}, baseline: Counts{1, 6000},
			o: inc(0.001, 1.5), insuff: true, p: 1, detail: "2^53"},
		{name: "no canary traffic", canary: Counts{0, 0}, baseline: Counts{30, 6000},
			o: inc(0.001, 1.5), insuff: true, p: 1, detail: "fewer than the minimum 1"},
		{name: "below MinRequests", canary: Counts{20, 50}, baseline: Counts{30, 6000},
			o: Options{Alpha: 0.001, MinEffect: 1.5, MinRequests: 100}, insuff: true, p: 1, detail: "fewer than the minimum 100"},
		{name: "no baseline traffic", canary: Counts{30, 300}, baseline: Counts{0, 0},
			o: inc(0.001, 1.5), insuff: true, p: 1, detail: "baseline has no requests"},
		{name: "one canary request", canary: Counts{1, 1}, baseline: Counts{30, 6000},
			o: inc(0.001, 1.5), insuff: true, p: math.NaN(), effect: math.NaN(), detail: "cannot reach"},
		{name: "invalid alpha", canary: Counts{30, 300}, baseline: Counts{30, 6000},
			o: inc(0, 1.5), insuff: true, p: 1, detail: "alpha"},
		{name: "invalid minEffect", canary: Counts{30, 300}, baseline: Counts{30, 6000},
			o: inc(0.001, math.NaN()), insuff: true, p: 1, detail: "minEffect"},
		{name: "invalid direction", canary: Counts{30, 300}, baseline: Counts{30, 6000},
			o: Options{Alpha: 0.001, Direction: "up"}, insuff: true, p: 1, detail: "direction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Proportion(tt.canary, tt.baseline, tt.o)
			checkResult(t, r, tt.holds, tt.insuff, tt.p, tt.effect, tt.detail)
		})
	}
}

func checkResult(t *testing.T, r Result, holds, insuff bool, p, effect float64, detail string) {
	t.Helper()
	if r.Holds != holds || r.Insufficient != insuff {
		t.Errorf("holds=%v insufficient=%v, want %v %v: %s", r.Holds, r.Insufficient, holds, insuff, r.Detail)
	}
	if r.Holds && r.Insufficient {
		t.Errorf("both holds and insufficient")
	}
	if !math.IsNaN(p) && relErr(r.PValue, p) > 1e-9 {
		t.Errorf("p = %v, want %v", r.PValue, p)
	}
	if !(r.PValue >= 0 && r.PValue <= 1) {
		t.Errorf("p = %v out of [0, 1]", r.PValue)
	}
	if r.Holds && r.PValue > r.Alpha {
		t.Errorf("holds with p %v > alpha %v", r.PValue, r.Alpha)
	}
	switch {
	case math.IsNaN(effect):
	case math.IsInf(effect, 1):
		if !math.IsInf(r.Effect, 1) {
			t.Errorf("effect = %v, want +Inf", r.Effect)
		}
	case relErr(r.Effect, effect) > 1e-9:
		t.Errorf("effect = %v, want %v", r.Effect, effect)
	}
	if !math.IsNaN(r.Effect) && !(r.EffectLow <= r.Effect && r.Effect <= r.EffectHigh) {
		t.Errorf("effect %v outside [%v, %v]", r.Effect, r.EffectLow, r.EffectHigh)
	}
	if !strings.Contains(r.Detail, detail) || r.Detail == "" {
		t.Errorf("detail %q does not contain %q", r.Detail, detail)
	}
	if _, err := json.Marshal(r.Judgement()); err != nil {
		t.Errorf("judgement does not encode: %v", err)
	}
}

// TestProportionCIDuality: the lower effect bound exceeds minEffect exactly
// when the shifted binomial test rejects.
func TestProportionCIDuality(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for range 500 {
		c := Counts{float64(rng.IntN(40)), 200 + float64(rng.IntN(800))}
		b := Counts{float64(rng.IntN(60)), 2000 + float64(rng.IntN(8000))}
		f := 1 + 2*rng.Float64()
		alpha := 0.001 + 0.1*rng.Float64()
		m := c.Bad + b.Bad
		pShift := binomUpper(m, c.Bad, f*c.Total/(f*c.Total+b.Total))
		r := Proportion(c, b, Options{Alpha: alpha, MinEffect: f})
		if math.Abs(pShift-alpha) < 1e-6*alpha {
			continue
		}
		if (r.EffectLow > f) != (pShift <= alpha) {
			t.Fatalf("%v vs %v f=%v α=%v: low %v, shifted p %v", c, b, f, alpha, r.EffectLow, pShift)
		}
	}
}

// TestProportionMonotone: more canary errors never lower the evidence, and
// more baseline errors never raise it.
func TestProportionMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 4))
	for range 300 {
		nc, nb := float64(1+rng.IntN(2000)), float64(1+rng.IntN(20000))
		xb := math.Floor(rng.Float64() * nb * 0.05)
		o := Options{Alpha: math.Pow(10, -1-3*rng.Float64()), MinEffect: 1 + rng.Float64()}
		prev := Proportion(Counts{0, nc}, Counts{xb, nb}, o)
		for x := 1.0; x <= min(nc, 60); x++ {
			r := Proportion(Counts{x, nc}, Counts{xb, nb}, o)
			if r.PValue > prev.PValue*(1+1e-9) || (prev.Holds && !r.Holds) {
				t.Fatalf("canary %v→%v/%v vs %v/%v: p %v→%v holds %v→%v", x-1, x, nc, xb, nb,
					prev.PValue, r.PValue, prev.Holds, r.Holds)
			}
			more := Proportion(Counts{x, nc}, Counts{xb + 1, nb}, o)
			if more.PValue < r.PValue*(1-1e-9) {
				t.Fatalf("more baseline errors lowered p: %v → %v", r.PValue, more.PValue)
			}
			prev = r
		}
	}
	// Decrease: fewer canary "good" counts never lower the evidence.
	for x := 100.0; x > 0; x-- {
		o := Options{Alpha: 0.01, Direction: Decrease}
		a := Proportion(Counts{x, 300}, Counts{600, 6000}, o)
		b := Proportion(Counts{x - 1, 300}, Counts{600, 6000}, o)
		if b.PValue > a.PValue*(1+1e-9) || (a.Holds && !b.Holds) {
			t.Fatalf("decrease %v→%v: p %v→%v", x, x-1, a.PValue, b.PValue)
		}
	}
}

// TestProportionNeeded: the reported request count is where the most
// extreme canary first becomes decidable.
func TestProportionNeeded(t *testing.T) {
	o := Options{Alpha: 1e-6, MinEffect: 1.5}
	b := Counts{30, 6000}
	r := Proportion(Counts{0, 0}, b, o)
	if !r.Insufficient || r.Needed < 2 || math.IsInf(r.Needed, 0) {
		t.Fatalf("no traffic: %+v", r)
	}
	n := r.Needed
	if got := Proportion(Counts{n, n}, b, o); got.Insufficient || !got.Holds {
		t.Errorf("at Needed=%v: %s", n, got.Detail)
	}
	if got := Proportion(Counts{n - 1, n - 1}, b, o); !got.Insufficient {
		t.Errorf("at Needed−1=%v: %s", n-1, got.Detail)
	}
	// Observed proportion 50 % against 0.5 %: needed grows with the baseline.
	r = Proportion(Counts{1, 2}, Counts{30, 6000}, Options{Alpha: 1e-9, MinEffect: 1.5})
	if !r.Insufficient || !(r.Needed > 2) || math.IsInf(r.Needed, 0) {
		t.Fatalf("observed share: %+v", r)
	}
	s := r.Needed / 2
	if got := Proportion(Counts{math.Round(r.Needed / 2), r.Needed}, Counts{math.Round(30 * s), math.Round(6000 * s)},
		Options{Alpha: 1e-9, MinEffect: 1.5}); !got.Holds {
		t.Errorf("at Needed=%v with the baseline scaled: %s", r.Needed, got.Detail)
	}
}

func TestProportionAbove(t *testing.T) {
	tests := []struct {
		name          string
		canary        Counts
		above         float64
		o             Options
		holds, insuff bool
		p, effect     float64
		detail        string
	}{
		{"5 % vs 3 % ceiling, loose alpha", Counts{15, 300}, 0.03, Options{Alpha: 0.05}, true, false,
			refBinomUpper(300, 15, 0.03), 0.05, "holds"},
		{"5 % vs 3 % ceiling, strict alpha", Counts{15, 300}, 0.03, Options{Alpha: 0.001}, false, false,
			refBinomUpper(300, 15, 0.03), 0.05, "not significant"},
		{"10 % vs 3 %", Counts{30, 300}, 0.03, Options{Alpha: 0.001}, true, false,
			refBinomUpper(300, 30, 0.03), 0.1, "holds"},
		{"below the ceiling", Counts{3, 300}, 0.03, Options{Alpha: 0.001}, false, false,
			refBinomUpper(300, 3, 0.03), 0.01, "not significant"},
		{"two of two", Counts{2, 2}, 0.03, Options{Alpha: 0.001}, true, false, 0.0009, 1, "holds"},
		{"one of one", Counts{1, 1}, 0.03, Options{Alpha: 0.5}, false, true, 0.03, 1, "cannot reach"},
		{"zero ceiling, one error", Counts{1, 300}, 0, Options{Alpha: 0.001}, false, false, 0, 1.0 / 300, "fewer than 2"},
		{"success rate below 95 %", Counts{270, 300}, 0.95, Options{Alpha: 0.001, Direction: Decrease}, true, false,
			refBinomLower(300, 270, 0.95), 0.9, "holds"},
		{"success rate 93 % not significant", Counts{280, 300}, 0.95, Options{Alpha: 0.001, Direction: Decrease}, false, false,
			refBinomLower(300, 280, 0.95), 280.0 / 300, "not significant"},
		{"ceiling 100 %", Counts{30, 300}, 1, Options{Alpha: 0.001}, false, true, 1, math.NaN(), "no proportion is above"},
		{"threshold NaN", Counts{30, 300}, math.NaN(), Options{Alpha: 0.001}, false, true, 1, math.NaN(), "threshold"},
		{"threshold negative", Counts{30, 300}, -0.1, Options{Alpha: 0.001}, false, true, 1, math.NaN(), "threshold"},
		{"huge counts", Counts{3.1e7, 1e9}, 0.03, Options{Alpha: 0.001}, true, false, math.NaN(), 0.031, "holds"},
		{"NaN counts", Counts{1, math.NaN()}, 0.03, Options{Alpha: 0.001}, false, true, 1, math.NaN(), "not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ProportionAbove(tt.canary, tt.above, tt.o)
			checkResult(t, r, tt.holds, tt.insuff, tt.p, tt.effect, tt.detail)
		})
	}
	r := ProportionAbove(Counts{1, 1}, 0.03, Options{Alpha: 0.001})
	if r.Needed != 2 {
		t.Errorf("Needed = %v, want 2 (0.03² ≤ 0.001)", r.Needed)
	}
}

func TestProportionFastOnHugeCounts(t *testing.T) {
	start := time.Now()
	for _, f := range []float64{1, 1.1, 2} {
		Proportion(Counts{5.001e8, 1e9}, Counts{5e8, 1e9}, Options{Alpha: 0.001, MinEffect: f})
		Proportion(Counts{4e15, 8e15}, Counts{4e15, 8e15}, Options{Alpha: 0.001, MinEffect: f})
		ProportionAbove(Counts{4e15, 8e15}, 0.5, Options{Alpha: 0.001})
		Proportion(Counts{0, 0}, Counts{1, 8e15}, Options{Alpha: 1e-9, MinEffect: f}) // needed search
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("huge counts took %v", d)
	}
}

func TestJudgement(t *testing.T) {
	r := Proportion(Counts{5, 600}, Counts{0, 6000}, Options{Alpha: 0.001, MinEffect: 1.5})
	j := r.Judgement()
	if j.Test != ProportionTest || j.Effect != nil || j.EffectHigh != nil || j.EffectLow == nil {
		t.Errorf("non-finite effect must be left out: %+v", j)
	}
	if j.Counts["canaryBad"] != 5 || j.Counts["baselineTotal"] != 6000 || j.MinEffect != 1.5 {
		t.Errorf("counts: %+v", j.Counts)
	}
	if _, err := json.Marshal(j); err != nil {
		t.Fatal(err)
	}
	r = Proportion(Counts{0, 0}, Counts{30, 6000}, Options{Alpha: 0.001, MinEffect: 1.5})
	if j := r.Judgement(); j.Needed == nil || *j.Needed != r.Needed {
		t.Errorf("needed: %+v", j)
	}
	if j := ProportionAbove(Counts{15, 300}, 0.03, Options{Alpha: 0.001}).Judgement(); j.Counts["above"] != 0.03 || j.Test != ProportionAboveTest {
		t.Errorf("above: %+v", j)
	}
}

func TestOptionsValidate(t *testing.T) {
	valid := []Options{{Alpha: 0.001}, {Alpha: 0.5, MinEffect: 0.5, Direction: Decrease}, {Alpha: 0.01, MinEffect: 2, Direction: Increase, MinRequests: 50}}
	for _, o := range valid {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	invalid := []Options{{}, {Alpha: 0.6}, {Alpha: math.NaN()}, {Alpha: 0.01, MinEffect: -1}, {Alpha: 0.01, MinEffect: math.Inf(1)},
		{Alpha: 0.01, Direction: "up"}, {Alpha: 0.01, MinRequests: -1}}
	for _, o := range invalid {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
