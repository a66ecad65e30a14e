package montecarlo

import (
	"context"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

// TestSeedScenariosNoLaterThanSeedRules: each of the seed's eight failure
// modes is rolled back by the built-in policy at the seed's own time (the
// seed's rules, same holds, on the same history): never earlier, and at most
// two intervals later.
func TestSeedScenariosNoLaterThanSeedRules(t *testing.T) {
	def, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	judges, err := contenders(false, "")
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
			s := at(seed)
			for _, r := range judges {
				d := at(r)
				if d.Before(s) || d.After(s.Add(2*interval)) {
					t.Errorf("%s judge rolls back at +%s, the seed's rules at +%s: not within two intervals after", r.Name, d.Sub(faultAt), s.Sub(faultAt))
				}
				t.Logf("%s judge +%s, seed rules +%s", r.Name, d.Sub(faultAt), s.Sub(faultAt))
			}
		})
	}
}
