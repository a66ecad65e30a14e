package montecarlo

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/policy"
)

// TestQualityBars measures the bars on a CI-sized sample (ShortSize
// with -short) and asserts them with the slack of a small sample; the full
// sample is `go run ./internal/montecarlo/cmd/montecarlo`.
func TestQualityBars(t *testing.T) {
	size := CISize
	if testing.Short() {
		size = ShortSize
	}
	res, err := Run(context.Background(), Options{Size: size, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := res.Markdown(&b, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replays in %s\n%s", res.Replays, res.Elapsed.Round(time.Millisecond), b.String())
	for _, v := range res.Verdicts(true) {
		if !v.Pass {
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

// TestSeedRules: the comparison policy is the built-in one with the seed's
// four error and latency triggers in the query form.
func TestSeedRules(t *testing.T) {
	def, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := SeedRules()
	if err != nil {
		t.Fatal(err)
	}
	ds, ss := def.Policy.Systems[0], seed.Policy.Systems[0]
	if ds.Name != ss.Name || ds.Interval != ss.Interval || !reflect.DeepEqual(ds.Traffic, ss.Traffic) || len(ds.Triggers) != len(ss.Triggers) {
		t.Fatalf("seed rules are not the default policy's system: %+v vs %+v", ss, ds)
	}
	// The seed's hold times of the four triggers in the query form.
	seedFor := map[string]time.Duration{"error-rate-high": 5 * time.Minute, "error-rate-ceiling": 0, "latency-p99-high": 5 * time.Minute, "success-rate-low": 3 * time.Minute}
	for i, d := range ds.Triggers {
		s := ss.Triggers[i]
		if d.Name != s.Name {
			t.Errorf("trigger %d: %s, want %s", i, s.Name, d.Name)
		}
		hold, query := seedFor[d.Name]
		switch {
		case query && (d.Form != policy.FormJudge || s.Form != policy.FormQuery || s.For != hold):
			t.Errorf("%s: default %s, seed %s for %s; want judge, and query for %s", d.Name, d.Form, s.Form, s.For, hold)
		case !query && (d.Form != s.Form || d.Canary != s.Canary || d.Expr != s.Expr || d.Condition != s.Condition || d.For != s.For):
			t.Errorf("%s differs from the default policy's", d.Name)
		}
	}
}

func TestAllowances(t *testing.T) {
	for _, c := range []struct {
		mean float64
		want int
	}{{0.05, 0}, {0.2, 1}, {1, 3}} {
		if got := poissonAllowed(c.mean); got != c.want {
			t.Errorf("poissonAllowed(%g) = %d, want %d", c.mean, got, c.want)
		}
	}
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
