package montecarlo

import (
	"context"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

// TestSeedScenariosNoLaterThanSeedRules: each of the seed's eight failure
// modes is caught by the judged default policy no later than the seed's own
// rules plus three intervals.
func TestSeedScenariosNoLaterThanSeedRules(t *testing.T) {
	def, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := SeedRules()
	if err != nil {
		t.Fatal(err)
	}
	interval := def.Policy.Systems[0].Interval
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	faultAt := t0.Add(30 * time.Minute)
	for _, kind := range []string{scenario.FaultErrorRate, scenario.FaultLatency, scenario.FaultSuccessRate, scenario.FaultThroughput,
		scenario.FaultByzantine, scenario.FaultDAGCorruption, scenario.FaultMemory, scenario.FaultCircuitBreaker} {
		t.Run(kind, func(t *testing.T) {
			cfg := scenario.Healthy(t0, time.Hour, 5, 7)
			cfg.Fault = scenario.Fault{Kind: kind, At: faultAt}
			at := func(r Rules) time.Time {
				sr, err := replay(context.Background(), cfg, r, t0, t0.Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if sr.RollbackAt == nil || sr.RollbackAt.Before(faultAt) {
					t.Fatalf("%s: rollback at %v (fault at %s)", r.Name, sr.RollbackAt, faultAt)
				}
				return *sr.RollbackAt
			}
			d, s := at(def), at(seed)
			if d.After(s.Add(3 * interval)) {
				t.Fatalf("judged default rolls back at +%s, the seed's rules at +%s: more than three intervals later", d.Sub(faultAt), s.Sub(faultAt))
			}
			t.Logf("default +%s, seed rules +%s", d.Sub(faultAt), s.Sub(faultAt))
		})
	}
}
