package scenario_test

import (
	"context"
	"slices"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func defaultPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("default.yaml", policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replay generates cfg, loads it into the embedded source and backtests the
// default policy over it.
func replay(t testing.TB, cfg scenario.Config) backtest.SystemReport {
	t.Helper()
	db, err := scenario.Open(cfg, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := backtest.Run(context.Background(), db, defaultPolicy(t), backtest.Options{From: cfg.Start, To: cfg.Start.Add(cfg.Duration)})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Systems[0]
}

// TestSeedFailureModesAreCaught: each of the seed's eight failure modes is
// rolled back by the default policy within its trigger's hold (plus the time
// its window takes to see the fault), and its own trigger fires after
// holding at least its hold time — exactly it, when the trigger has no
// separate evidence or decides the rollback with its evidence at hand
// (after a rollback the canary's life begins anew and a sequential judge's
// evidence with it, so a trigger that fires later in the replay may fire
// later than its hold).
func TestSeedFailureModesAreCaught(t *testing.T) {
	pol := defaultPolicy(t)
	hold := map[string]time.Duration{}
	for _, tr := range pol.Systems[0].Triggers {
		hold[tr.Name] = tr.For
	}
	interval := pol.Systems[0].Interval
	cases := []struct {
		fault, trigger string
		canaryRPS      float64
		// ramp bounds how long the trigger's window takes to see the fault.
		ramp time.Duration
	}{
		{scenario.FaultErrorRate, "error-rate-high", 5, 3 * time.Minute},
		{scenario.FaultLatency, "latency-p99-high", 5, 3 * time.Minute},
		{scenario.FaultSuccessRate, "success-rate-low", 5, 3 * time.Minute},
		{scenario.FaultThroughput, "throughput-low", 5, 2 * time.Minute},
		{scenario.FaultByzantine, "byzantine-attack-detected", 5, time.Minute},
		{scenario.FaultDAGCorruption, "dag-corruption-detected", 5, time.Minute},
		{scenario.FaultMemory, "memory-exhaustion", 5, time.Minute},
		{scenario.FaultCircuitBreaker, "circuit-breaker-storm", 5, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			faultAt := t0.Add(30 * time.Minute)
			cfg := scenario.Healthy(t0, 60*time.Minute, c.canaryRPS, 7)
			cfg.Fault = scenario.Fault{Kind: c.fault, At: faultAt}
			sr := replay(t, cfg)
			if sr.Decision != backtest.Rollback {
				t.Fatalf("not rolled back: %s; final %+v", sr.Decision, sr.Final)
			}
			if sr.RollbackAt.Before(faultAt) {
				t.Fatalf("rolled back at %s, before the fault at %s: %v", sr.RollbackAt, faultAt, sr.Firing)
			}
			latest := faultAt.Add(hold[c.trigger] + c.ramp)
			if sr.RollbackAt.After(latest) {
				t.Fatalf("rolled back at %s, later than %s", sr.RollbackAt, latest)
			}
			pendingAt, firingAt := transitionTimes(sr.Transitions, c.trigger)
			if firingAt.IsZero() {
				t.Fatalf("%s never fired (rollback by %v)", c.trigger, sr.Firing)
			}
			held := firingAt.Sub(pendingAt)
			exact := !sequential(pol, c.trigger) || slices.Contains(sr.Firing, c.trigger)
			if held < hold[c.trigger] || (exact && held >= hold[c.trigger]+interval) {
				t.Fatalf("%s fired after holding %s; its hold time is %s", c.trigger, held, hold[c.trigger])
			}
			t.Logf("%s: rollback %s after the fault (by %v); %s held %s", c.fault, sr.RollbackAt.Sub(faultAt), sr.Firing, c.trigger, firingAt.Sub(pendingAt))
		})
	}
}

func sequential(p *policy.Policy, trigger string) bool {
	for _, tr := range p.Systems[0].Triggers {
		if tr.Name == trigger {
			return tr.Judge != nil && tr.Judge.Sequential
		}
	}
	return false
}

// transitionTimes finds the first firing of trigger and the start of the
// active run that led to it.
func transitionTimes(trs []rewind.Transition, trigger string) (pendingAt, firingAt time.Time) {
	for _, tr := range trs {
		if tr.Trigger != trigger {
			continue
		}
		switch {
		case tr.To == rewind.StatePending:
			pendingAt = tr.At
		case tr.To == rewind.StateFiring && tr.From != rewind.StatePending:
			return tr.At, tr.At
		case tr.To == rewind.StateFiring:
			return pendingAt, tr.At
		}
	}
	return time.Time{}, time.Time{}
}

// TestHealthyCanariesAreNeverRolledBack covers the oddities of real traffic
// that the seed turns into rollbacks.
func TestHealthyCanariesAreNeverRolledBack(t *testing.T) {
	at := t0.Add(30 * time.Minute)
	cases := []struct {
		name   string
		tweak  func(c *scenario.Config)
		hours  float64
		expect string // "" : anything but rollback; a decision; or a trigger that must go pending
	}{
		{"noisy traffic", func(c *scenario.Config) {}, 3, ""},
		{"canary with no series at all", func(c *scenario.Config) { c.NoCanary = true }, 1, backtest.Inconclusive},
		{"canary whose traffic stops", func(c *scenario.Config) { c.Fault = scenario.Fault{Kind: scenario.FaultNoTraffic, At: at} }, 1, backtest.Inconclusive},
		{"10-minute monitoring gap", func(c *scenario.Config) {
			c.Fault = scenario.Fault{Kind: scenario.FaultGap, At: at, For: 10 * time.Minute}
		}, 1, ""},
		{"uneven traffic split (canary 1 pod at 2 req/s, baseline 4 pods)", func(c *scenario.Config) {
			c.Canary.RPS, c.Baseline.Instances, c.Baseline.RPS = 2, 4, 40
		}, 2, ""},
		{"throughput dip shorter than its 10m hold", func(c *scenario.Config) {
			c.Fault = scenario.Fault{Kind: scenario.FaultThroughput, At: at, For: 5 * time.Minute}
		}, 1, "throughput-low"},
		{"memory spike shorter than its 5m hold", func(c *scenario.Config) {
			c.Fault = scenario.Fault{Kind: scenario.FaultMemory, At: at, For: 3 * time.Minute}
		}, 1, "memory-exhaustion"},
		{"zero errors on both sides", func(c *scenario.Config) { c.Canary.ErrorRate, c.Baseline.ErrorRate = 0, 0 }, 1, backtest.Healthy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := scenario.Healthy(t0, time.Duration(c.hours*float64(time.Hour)), 20, 11)
			c.tweak(&cfg)
			sr := replay(t, cfg)
			if sr.Decision == backtest.Rollback {
				t.Fatalf("healthy canary rolled back at %s by %v; evidence %+v", sr.RollbackAt, sr.Firing, sr.Final)
			}
			if _, firing := transitionTimes(sr.Transitions, c.expect); !firing.IsZero() {
				t.Fatalf("%s fired", c.expect)
			}
			if pending := pendingSeen(sr.Transitions, c.expect); c.expect != "" && !pending && sr.Decision != c.expect {
				t.Fatalf("decision %s, want %s; final %+v", sr.Decision, c.expect, sr.Final)
			}
		})
	}
}

func pendingSeen(trs []rewind.Transition, trigger string) bool {
	for _, tr := range trs {
		if tr.Trigger == trigger && tr.To == rewind.StatePending {
			return true
		}
	}
	return false
}
