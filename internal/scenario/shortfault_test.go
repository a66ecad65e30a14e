package scenario_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/montecarlo"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

// shortFault is a fault that makes the canary worse by the seed's own
// measure (its 5-minute windows) for less than the seed's hold time.
type shortFault struct {
	name    string
	trigger string // the seed's rule the fault trips
	// newCanary starts the canary with the fault: a warm-up.
	newCanary bool
	fault     scenario.Fault // At is set by the test; For is the short duration
}

// shortFaults are warm-up latency spikes and short error bumps. Each is as
// strong as it can be while the seed's condition, over its 5-minute windows,
// holds for less than the hold time; the test checks that on each history.
var shortFaults = []shortFault{
	{"warm-up: a new canary 3× slower for its first minute", "latency-p99-high", true,
		scenario.Fault{Kind: scenario.FaultLatency, Value: 3, For: time.Minute}},
	{"warm-up: a new canary 4× slower for its first 30 s", "latency-p99-high", true,
		scenario.Fault{Kind: scenario.FaultLatency, Value: 4, For: 30 * time.Second}},
	{"latency spike: 3× slower for 2 minutes", "latency-p99-high", false,
		scenario.Fault{Kind: scenario.FaultLatency, Value: 3, For: 2 * time.Minute}},
	{"warm-up: a new canary with 1.5 % errors for its first minute", "error-rate-high", true,
		scenario.Fault{Kind: scenario.FaultErrorBump, Value: 0.015, For: time.Minute}},
	{"error bump: 1.3 % errors for 2 minutes", "error-rate-high", false,
		scenario.Fault{Kind: scenario.FaultErrorBump, Value: 0.013, For: 2 * time.Minute}},
	{"error bump: 2 % errors for 75 s", "error-rate-high", false,
		scenario.Fault{Kind: scenario.FaultErrorBump, Value: 0.02, For: 75 * time.Second}},
}

// faultAt is when the fault (and, for a warm-up, the canary) starts.
var faultAt = t0.Add(20 * time.Minute)

// shortFaultConfig is a busy system, so that the sustained variant of each
// fault is proven within the hold: canary 50 req/s, baseline 4 pods at
// 100 req/s, both at 0.5 % errors.
func shortFaultConfig(f shortFault, sustained bool, seed uint64) scenario.Config {
	cfg := scenario.Healthy(t0, 50*time.Minute, 50, seed)
	cfg.Baseline.Instances, cfg.Baseline.RPS = 4, 100
	cfg.Fault = f.fault
	cfg.Fault.At = faultAt
	if sustained {
		cfg.Fault.For = 0
	}
	if f.newCanary {
		cfg.CanaryFrom = faultAt
	}
	return cfg
}

// replayWith backtests one policy over a generated history.
func replayWith(t testing.TB, cfg scenario.Config, p *policy.Policy) backtest.SystemReport {
	t.Helper()
	db, err := scenario.Open(cfg, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := backtest.Run(context.Background(), db, p, backtest.Options{From: t0.Add(5 * time.Minute), To: cfg.Start.Add(cfg.Duration)})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Systems[0]
}

// longestRun is the longest stretch over which trigger was pending or
// firing (its condition held), from the first evaluation of a run to the
// last.
func longestRun(trs []rewind.Transition, trigger string, interval time.Duration) time.Duration {
	var longest time.Duration
	var start time.Time
	for _, tr := range trs {
		if tr.Trigger != trigger {
			continue
		}
		active := tr.To == rewind.StatePending || tr.To == rewind.StateFiring
		wasActive := tr.From == rewind.StatePending || tr.From == rewind.StateFiring
		switch {
		case active && !wasActive:
			start = tr.At
		case !active && wasActive:
			longest = max(longest, tr.At.Sub(start)-interval)
		}
	}
	return longest
}

func judges(t *testing.T) []montecarlo.Rules {
	t.Helper()
	var out []montecarlo.Rules
	for _, f := range []func() (montecarlo.Rules, error){montecarlo.FixedRules, montecarlo.SequentialRules} {
		r, err := f()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestShortFaultsNeverRollBack: a warm-up latency spike or a short error
// bump whose seed condition holds for less than the hold time never rolls
// back — with either judge — although the seed's measure sees it.
func TestShortFaultsNeverRollBack(t *testing.T) {
	seedRules, err := montecarlo.SeedRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range shortFaults {
		t.Run(f.name, func(t *testing.T) {
			cfg := shortFaultConfig(f, false, 3)
			sr := replayWith(t, cfg, seedRules.Policy)
			hold := holdOf(t, seedRules.Policy, f.trigger)
			run := longestRun(sr.Transitions, f.trigger, 30*time.Second)
			if sr.Decision == backtest.Rollback || run >= hold || run == 0 {
				t.Fatalf("not a short fault: the seed's rules decide %s; its %s condition held for %s at most (hold %s)", sr.Decision, f.trigger, run, hold)
			}
			for _, j := range judges(t) {
				got := replayWith(t, cfg, j.Policy)
				if got.Decision == backtest.Rollback {
					t.Errorf("%s judge rolls back at +%s by %v", j.Name, got.RollbackAt.Sub(faultAt), got.Firing)
				}
				if r := longestRun(got.Transitions, f.trigger, 30*time.Second); r != run {
					t.Errorf("%s judge: %s held %s, the seed's condition %s: the hold must measure the seed's condition", j.Name, f.trigger, r, run)
				}
			}
			t.Logf("the seed's %s condition held %s", f.trigger, run)
		})
	}
}

// TestSustainedFaultsRollBackAtTheSeedsTime: the same faults, sustained,
// roll back when the seed's rules do (fault + condition + hold), never
// earlier, and at most two intervals later.
func TestSustainedFaultsRollBackAtTheSeedsTime(t *testing.T) {
	seedRules, err := montecarlo.SeedRules()
	if err != nil {
		t.Fatal(err)
	}
	interval := seedRules.Policy.Systems[0].Interval
	for _, f := range shortFaults {
		t.Run(f.name, func(t *testing.T) {
			cfg := shortFaultConfig(f, true, 3)
			seed := replayWith(t, cfg, seedRules.Policy)
			if seed.Decision != backtest.Rollback {
				t.Fatalf("the seed's rules do not roll back the sustained fault: %s", seed.Decision)
			}
			var got []string
			for _, j := range judges(t) {
				sr := replayWith(t, cfg, j.Policy)
				switch {
				case sr.Decision != backtest.Rollback:
					t.Errorf("%s judge: %s, want a rollback", j.Name, sr.Decision)
				case sr.RollbackAt.Before(*seed.RollbackAt):
					t.Errorf("%s judge rolls back at +%s, before the seed's rules (+%s)", j.Name, sr.RollbackAt.Sub(faultAt), seed.RollbackAt.Sub(faultAt))
				case sr.RollbackAt.After(seed.RollbackAt.Add(2 * interval)):
					t.Errorf("%s judge rolls back at +%s, more than two intervals after the seed's rules (+%s)", j.Name, sr.RollbackAt.Sub(faultAt), seed.RollbackAt.Sub(faultAt))
				}
				if sr.RollbackAt != nil {
					got = append(got, fmt.Sprintf("%s +%s by %v", j.Name, sr.RollbackAt.Sub(faultAt), sr.Firing))
				}
			}
			t.Logf("seed's rules +%s by %v; %v", seed.RollbackAt.Sub(faultAt), seed.Firing, got)
		})
	}
}

func holdOf(t testing.TB, p *policy.Policy, trigger string) time.Duration {
	for _, tr := range p.Systems[0].Triggers {
		if tr.Name == trigger {
			return tr.For
		}
	}
	t.Fatalf("no trigger %s", trigger)
	return 0
}
