package judge

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// bounds20 is a 20-bucket layout: 19 exponential bounds from 5 ms, and +Inf.
func bounds20() []float64 {
	b := make([]float64, 0, 20)
	for i := range 19 {
		b = append(b, 0.005*math.Pow(1.6, float64(i)))
	}
	return append(b, math.Inf(1))
}

// lognormalBuckets is the expected cumulative histogram of n durations
// drawn from a log-normal with the given median and σ (of the log).
func lognormalBuckets(n, median, sigma float64) []Bucket {
	var out []Bucket
	for _, le := range bounds20() {
		cdf := 1.0
		if !math.IsInf(le, 1) {
			cdf = 1 - normalUpper(math.Log(le/median)/sigma)
		}
		out = append(out, Bucket{Le: le, Count: math.Round(n * cdf)})
	}
	return out
}

// sampleBuckets draws n log-normal durations into the 20-bucket layout.
func sampleBuckets(rng *rand.Rand, n int, median, sigma float64) []Bucket {
	bs := bounds20()
	out := make([]Bucket, len(bs))
	for i, le := range bs {
		out[i].Le = le
	}
	for range n {
		v := median * math.Exp(sigma*rng.NormFloat64())
		i, _ := slices.BinarySearch(bs, v)
		for j := i; j < len(bs); j++ {
			out[j].Count++
		}
	}
	return out
}

func cum(les []float64, counts ...float64) []Bucket {
	out := make([]Bucket, len(les))
	for i := range les {
		out[i] = Bucket{Le: les[i], Count: counts[i]}
	}
	return out
}

var inf = math.Inf(1)

func TestLatency(t *testing.T) {
	o := Options{Alpha: 0.001, MinEffect: 2}
	base := lognormalBuckets(6000, 0.1, 0.5)
	tests := []struct {
		name             string
		canary, baseline []Bucket
		q                float64
		o                Options
		holds, insuff    bool
		detail           string
	}{
		{"same distribution", lognormalBuckets(300, 0.1, 0.5), base, 0.99, o, false, false, "not significant"},
		{"three times slower", lognormalBuckets(300, 0.3, 0.5), base, 0.99, o, true, false, "holds"},
		{"slower, below minEffect", lognormalBuckets(1500, 0.13, 0.5), base, 0.99, o, false, false, "effect is not"},
		// p99 tripled, median unchanged: σ grows by ln 3 / 2.326.
		{"p99 triples, same median", lognormalBuckets(1500, 0.1, 0.5+math.Log(3)/2.3263), base, 0.99, o, true, false, "holds"},
		{"faster canary", lognormalBuckets(300, 0.03, 0.5), base, 0.99, o, false, false, "not significant"},
		{"one canary request", lognormalBuckets(1, 0.3, 0.5), base, 0.99, o, false, true, "cannot reach"},
		{"no canary requests", lognormalBuckets(0, 0.3, 0.5), base, 0.99, o, false, true, "fewer than the minimum 1"},
		{"no baseline requests", lognormalBuckets(300, 0.3, 0.5), lognormalBuckets(0, 0.1, 0.5), 0.99, o, false, true, "baseline has no"},
		{"no +Inf bucket", lognormalBuckets(300, 0.3, 0.5)[:19], base, 0.99, o, false, true, "+Inf"},
		{"NaN count", cum([]float64{0.1, inf}, math.NaN(), 3), base, 0.99, o, false, true, "NaN"},
		{"no shared bound", cum([]float64{0.123, inf}, 100, 300), base, 0.99, o, false, true, "share no finite"},
		{"quantile 1", lognormalBuckets(300, 0.3, 0.5), base, 1, o, false, true, "quantile"},
		{"quantile NaN", lognormalBuckets(300, 0.3, 0.5), base, math.NaN(), o, false, true, "quantile"},
		{"direction decrease", lognormalBuckets(300, 0.3, 0.5), base, 0.99, Options{Alpha: 0.001, Direction: Decrease}, false, true, "increase only"},
		{"invalid alpha", lognormalBuckets(300, 0.3, 0.5), base, 0.99, Options{Alpha: 2}, false, true, "alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Latency(tt.canary, tt.baseline, tt.q, tt.o)
			checkResult(t, r, tt.holds, tt.insuff, math.NaN(), math.NaN(), tt.detail)
			t.Log(r.Detail)
		})
	}
}

// TestLatencyTailCatchesSpread: a wider canary with the same median is
// caught by the tail test while the rank test sees little.
func TestLatencyTailCatchesSpread(t *testing.T) {
	base := lognormalBuckets(6000, 0.1, 0.5)
	r := Latency(lognormalBuckets(1500, 0.1, 0.5+math.Log(3)/2.3263), base, 0.99, Options{Alpha: 0.001, MinEffect: 2})
	if !(r.TailP < 1e-6) || !(r.RankP > 0.01) {
		t.Errorf("tail p %v, rank p %v: %s", r.TailP, r.RankP, r.Detail)
	}
	if !(r.Effect > 2.2 && r.Effect < 4) {
		t.Errorf("effect %v, want about 3", r.Effect)
	}
}

func TestHistogramQuantile(t *testing.T) {
	tests := []struct {
		name string
		b    []Bucket
		q    float64
		want float64
	}{
		{"interpolate first bucket from 0", cum([]float64{0.1, 0.2, inf}, 50, 100, 100), 0.25, 0.05},
		{"bucket boundary", cum([]float64{0.1, 0.2, inf}, 50, 100, 100), 0.5, 0.1},
		{"second bucket", cum([]float64{0.1, 0.2, inf}, 50, 100, 100), 0.75, 0.15},
		{"+Inf bucket gives highest finite bound", cum([]float64{0.1, 0.2, inf}, 50, 90, 100), 0.99, 0.2},
		{"non-positive first bound", cum([]float64{0, 1, inf}, 10, 20, 20), 0.25, 0},
		{"unsorted, duplicate and non-monotone input", []Bucket{{inf, 100}, {0.2, 95}, {0.1, 30}, {0.1, 20}, {0.15, 40}}, 0.5, 0.1},
	}
	for _, tt := range tests {
		le, c, err := normalize(tt.b, "x")
		if err != nil {
			t.Fatal(err)
		}
		h := hist{le: le, cum: c, n: perBucket(c)}
		if got := h.quantile(tt.q); relErr(got, tt.want) > 1e-12 {
			t.Errorf("%s: quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	le, c, err := normalize([]Bucket{{inf, 100}, {0.2, 95}, {0.1, 30}, {0.1, 20}, {0.15, 40}, {0.3, -5}}, "x")
	if err != nil {
		t.Fatal(err)
	}
	wantLe := []float64{0.1, 0.15, 0.2, 0.3, inf}
	wantC := []float64{50, 50, 95, 95, 100} // merged, monotone, negative clamped
	if !slices.Equal(le, wantLe) || !slices.Equal(c, wantC) {
		t.Errorf("normalize = %v %v, want %v %v", le, c, wantLe, wantC)
	}
	// Different layouts: only shared bounds are kept.
	ch, bh, err := commonBuckets(cum([]float64{0.1, 0.2, 0.4, inf}, 1, 2, 3, 4), cum([]float64{0.1, 0.3, 0.4, inf}, 5, 6, 7, 8))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.le, []float64{0.1, 0.4, inf}) || !slices.Equal(ch.n, []float64{1, 2, 1}) || !slices.Equal(bh.n, []float64{5, 2, 1}) {
		t.Errorf("common = %+v %+v", ch, bh)
	}
}

// TestRankTest checks the bucketed Mann–Whitney against the permutation
// variance of the midrank sum computed from the expanded sample.
func TestRankTest(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for range 200 {
		k := 2 + rng.IntN(6)
		c, b := make([]float64, k), make([]float64, k)
		for i := range k {
			c[i], b[i] = float64(rng.IntN(8)), float64(rng.IntN(8))
		}
		nc, nb := sum(c), sum(b)
		if nc == 0 || nb == 0 {
			continue
		}
		// Expand: midranks per group, canary rank sum, permutation variance.
		N := nc + nb
		var w, ss, start float64
		for i := range k {
			t := c[i] + b[i]
			r := start + (t+1)/2
			w += c[i] * r
			ss += t * (r - (N+1)/2) * (r - (N+1)/2)
			start += t
		}
		u := w - nc*(nc+1)/2
		v := nc * nb / (N * (N - 1)) * ss
		want := 1.0
		if v > 0 {
			want = normalUpper((u - nc*nb/2 - 0.5) / math.Sqrt(v))
		}
		if got := rankTest(c, b); relErr(got, want) > 1e-9 {
			t.Fatalf("rankTest(%v, %v) = %v, want %v", c, b, got, want)
		}
	}
	// Hand-computed: canary {2, 3}, baseline {1, 2}: U = 3.5 of 4 pairs, ties
	// one group of two; var = 4/12·(5 − 6/12) = 1.5; z = (3.5−2−0.5)/√1.5.
	if got, want := rankTest([]float64{0, 1, 1}, []float64{1, 1, 0}), normalUpper(1/math.Sqrt(1.5)); relErr(got, want) > 1e-12 {
		t.Errorf("hand example: %v, want %v", got, want)
	}
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// TestLatencyMonotone: moving canary requests to a slower bucket never
// lowers the evidence (where it points toward worse, p ≤ ½).
func TestLatencyMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	base := lognormalBuckets(6000, 0.1, 0.6)
	for range 300 {
		c := sampleBuckets(rng, 50+rng.IntN(500), 0.1*math.Exp(rng.Float64()), 0.4+0.4*rng.Float64())
		o := Options{Alpha: 0.01, MinEffect: 1.5}
		r := Latency(c, base, 0.95, o)
		// Move one request from the first non-empty bucket to the next one.
		moved := slices.Clone(c)
		for i := range moved {
			if moved[i].Count > 0 && i < len(moved)-1 {
				moved[i].Count--
				break
			}
		}
		m := Latency(moved, base, 0.95, o)
		if r.PValue <= 0.5 && m.PValue > r.PValue*(1+1e-9) {
			t.Fatalf("p %v → %v after moving a request up", r.PValue, m.PValue)
		}
		if r.Holds && !m.Holds && m.Effect >= r.Effect {
			t.Fatalf("stopped holding: %s → %s", r.Detail, m.Detail)
		}
	}
}

func TestLatencyNeeded(t *testing.T) {
	base := lognormalBuckets(6000, 0.1, 0.5)
	o := Options{Alpha: 1e-6, MinEffect: 2}
	r := Latency(lognormalBuckets(3, 0.3, 0.5), base, 0.99, o)
	if !r.Insufficient || !(r.Needed > 3) || math.IsInf(r.Needed, 0) {
		t.Fatalf("%+v", r)
	}
	// At (about) Needed canary requests, baseline grown alike, it decides.
	s := 1.05 * r.Needed / 3
	if got := Latency(scaleBuckets(lognormalBuckets(3, 0.3, 0.5), s), scaleBuckets(base, s), 0.99, o); got.Insufficient {
		t.Errorf("at needed %v: %s", r.Needed, got.Detail)
	}
	if r := Latency(lognormalBuckets(300, 0.3, 0.5), lognormalBuckets(0, 0.1, 0.5), 0.99, o); !math.IsInf(r.Needed, 1) {
		t.Errorf("no baseline: needed %v", r.Needed)
	}
}

func scaleBuckets(bs []Bucket, s float64) []Bucket {
	out := slices.Clone(bs)
	for i := range out {
		out[i].Count = math.Round(out[i].Count * s)
	}
	return out
}
