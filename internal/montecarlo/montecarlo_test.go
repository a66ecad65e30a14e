package montecarlo

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/policy"
)

// TestQualityBars measures the bars on the built-in policy's judge
// with a CI-sized sample (ShortSize with -short) and asserts them with the
// slack of a small sample; the full comparison of both judges is `go run
// ./internal/montecarlo/cmd/montecarlo` (docs/judge.md).
func TestQualityBars(t *testing.T) {
	size := CISize
	if testing.Short() {
		size = ShortSize
	}
	def, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Size: size, Seed: 1, Only: def.Name})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := res.Markdown(&b, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replays in %s\n%s", res.Replays, res.Elapsed.Round(time.Millisecond), b.String())
	for _, v := range res.Verdicts(def.Name, true) {
		switch {
		case !v.Pass && v.OutOfReach != "":
			t.Logf("bar out of reach, missed: %s — measured %s", v.Bar, v.Measured)
		case !v.Pass:
			t.Errorf("bar failed: %s — measured %s", v.Bar, v.Measured)
		}
	}
}

// TestRunsAreDeterministic: a run's outcome depends on its seed only, not
// on the number of workers.
func TestRunsAreDeterministic(t *testing.T) {
	rules, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	c := FaultCases()[1]
	var got []FaultResult
	for _, workers := range []int{1, 3} {
		r, err := MeasureFault(context.Background(), rules, c, 3, Options{Seed: 7, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if !reflect.DeepEqual(got[0].Times, got[1].Times) || got[0].Missed != got[1].Missed {
		t.Fatalf("1 worker: %v, %d missed; 3 workers: %v, %d missed", got[0].Times, got[0].Missed, got[1].Times, got[1].Missed)
	}
	if seedOf(1, "a", 0) == seedOf(1, "a", 1) || seedOf(1, "a", 0) == seedOf(2, "a", 0) || seedOf(1, "a", 0) == seedOf(1, "b", 0) {
		t.Fatal("seeds of different runs collide")
	}
}

// TestJudgeModes: the two judges compared are the built-in policy with
// every judge trigger in one mode, everything else equal; the seed rules
// are the built-in policy with the seed's four error and latency triggers in
// the query form.
func TestJudgeModes(t *testing.T) {
	def, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := FixedRules()
	if err != nil {
		t.Fatal(err)
	}
	seq, err := SequentialRules()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := SeedRules()
	if err != nil {
		t.Fatal(err)
	}
	ds := def.Policy.Systems[0]
	judged := 0
	for i, d := range ds.Triggers {
		f, s := fixed.Policy.Systems[0].Triggers[i], seq.Policy.Systems[0].Triggers[i]
		if d.Name != f.Name || d.Name != s.Name || d.For != f.For || d.For != s.For || d.Form != f.Form || d.Form != s.Form {
			t.Fatalf("trigger %d: %s/%s/%s differ beyond the judge mode", i, d.Name, f.Name, s.Name)
		}
		if d.Judge != nil {
			judged++
			// The sequential judge proves the held triggers sequentially; one that fires at once keeps its window test.
			if f.Judge.Sequential || s.Judge.Sequential != (d.For > 0) || f.Judge.Alpha != s.Judge.Alpha || f.Judge.Canary.Bad != s.Judge.Canary.Bad {
				t.Errorf("%s: fixed %+v, sequential %+v", d.Name, f.Judge, s.Judge)
			}
		}
	}
	if judged != 4 {
		t.Fatalf("%d judge triggers, want 4", judged)
	}
	ss := seed.Policy.Systems[0]
	if ds.Name != ss.Name || ds.Interval != ss.Interval || !reflect.DeepEqual(ds.Traffic, ss.Traffic) || len(ds.Triggers) != len(ss.Triggers) {
		t.Fatalf("seed rules are not the default policy's system: %+v vs %+v", ss, ds)
	}
	// The seed's hold times: the built-in policy keeps every one of them.
	seedFor := map[string]time.Duration{"error-rate-high": 5 * time.Minute, "error-rate-ceiling": 0, "latency-p99-high": 5 * time.Minute,
		"success-rate-low": 3 * time.Minute, "throughput-low": 10 * time.Minute, "byzantine-attack-detected": 0,
		"dag-corruption-detected": 0, "memory-exhaustion": 5 * time.Minute, "circuit-breaker-storm": 0}
	for i, d := range ds.Triggers {
		s := ss.Triggers[i]
		if d.Name != s.Name || d.For != seedFor[d.Name] || s.For != d.For {
			t.Errorf("%s: default holds %s, seed rules %s; the seed's is %s", d.Name, d.For, s.For, seedFor[d.Name])
		}
		if d.Judge != nil && s.Form != policy.FormQuery {
			t.Errorf("%s: default form %s, seed rules %s", d.Name, d.Form, s.Form)
		}
		if d.Judge == nil && (d.Form != s.Form || d.Canary != s.Canary || d.Expr != s.Expr || d.Condition != s.Condition) {
			t.Errorf("%s differs from the default policy's", d.Name)
		}
	}
}

func TestIntervals(t *testing.T) {
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{{0, 10, 0, 0.3085}, {5, 10, 0.1871, 0.8129}, {0, 500, 0, 0.00735}} {
		lo, hi := binomialCI(c.k, c.n)
		if math.Abs(lo-c.lo) > 1e-3 || math.Abs(hi-c.hi) > 1e-3 {
			t.Errorf("binomialCI(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
	for _, c := range []struct {
		k      int
		lo, hi float64
	}{{0, 0, 3.689}, {1, 0.0253, 5.572}, {10, 4.795, 18.39}} {
		lo, hi := poissonCI(c.k)
		if math.Abs(lo-c.lo) > 2e-3 || math.Abs(hi-c.hi) > 2e-3 {
			t.Errorf("poissonCI(%d) = [%.4f, %.4f], want [%.4f, %.4f]", c.k, lo, hi, c.lo, c.hi)
		}
	}
}

func TestSignAllowance(t *testing.T) {
	for _, c := range []struct{ n, want int }{{4, 4}, {5, 4}, {10, 8}, {30, 19}} {
		if got := signAllowed(c.n); got != c.want {
			t.Errorf("signAllowed(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	r := FaultResult{Runs: 5, Times: []time.Duration{1, 2, 3}, Missed: 2}
	if m, ok := r.Median(); !ok || m != 3 {
		t.Fatalf("median %v %v, want 3", m, ok)
	}
	if _, ok := r.Quantile(0.9); ok {
		t.Fatal("p90 of 5 runs with 2 missed is never")
	}
}
