package backtest_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/releases"
	"github.com/rewind-sre/rewind/judge"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
)

// replayScenario generates a scenario into the embedded engine and replays
// its whole span with its policy.
func replayScenario(t *testing.T, sc releases.Scenario, pol *policy.Policy) (*backtest.Report, releases.Truth) {
	t.Helper()
	data, truth, err := releases.Generate(sc.History)
	if err != nil {
		t.Fatal(err)
	}
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.LoadOpenMetrics(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if pol == nil {
		if pol, err = policy.Parse(sc.Name+".yaml", sc.Policy()); err != nil {
			t.Fatal(err)
		}
	}
	h := sc.History
	rep, err := backtest.Run(context.Background(), db, pol, backtest.Options{From: h.Start, To: h.Start.Add(h.Duration)})
	if err != nil {
		t.Fatal(err)
	}
	return rep, truth
}

// TestRolloutScenarios: every rollout of every scenario is found and judged
// as it must be. Bad releases are rolled back, in the phase they show in,
// within the hold plus 3 intervals after their effect is visible (see
// deadline); good releases, shared incidents and rollouts that
// kube-state-metrics missed never are.
func TestRolloutScenarios(t *testing.T) {
	for _, sc := range releases.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			for _, line := range checkScenario(t, sc) {
				t.Log(line)
			}
		})
	}
}

// TestRolloutScenariosSeeds runs every scenario with more seeds: a
// measurement, run on demand (about a minute for 30 seeds):
//
//	REWIND_ROLLOUT_SEEDS=30 go test -count=1 -run RolloutScenariosSeeds -v ./backtest/
func TestRolloutScenariosSeeds(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REWIND_ROLLOUT_SEEDS"))
	if n <= 0 {
		t.Skip("a measurement: set REWIND_ROLLOUT_SEEDS to the number of seeds per scenario")
	}
	for _, sc := range releases.Scenarios() {
		var delays []time.Duration
		for seed := 1000; seed < 1000+n; seed++ {
			sc.History.Seed = uint64(seed)
			for _, line := range checkScenario(t, sc) {
				if d, ok := strings.CutPrefix(line, "delay "); ok {
					v, _ := time.ParseDuration(d)
					delays = append(delays, v)
				}
			}
		}
		slices.Sort(delays)
		if len(delays) > 0 {
			t.Logf("%s: %d seeds, delay after the effect was visible: median %s, max %s", sc.Name, n, delays[len(delays)/2], delays[len(delays)-1])
		} else {
			t.Logf("%s: %d seeds, as expected", sc.Name, n)
		}
	}
}

// checkScenario replays a scenario and checks every rollout's decision;
// it returns what it measured, one line per rollout, and "delay D" lines.
func checkScenario(t *testing.T, sc releases.Scenario) []string {
	rep, truth := replayScenario(t, sc, nil)
	pol, _ := policy.Parse("p.yaml", sc.Policy())
	if len(rep.Rollouts) != len(sc.Want) {
		t.Fatalf("%s seed %d: found %d rollouts, want %d: %+v", sc.Name, sc.History.Seed, len(rep.Rollouts), len(sc.Want), rep.Rollouts)
	}
	var out []string
	for _, r := range rep.Rollouts {
		want, ok := sc.Want[r.Revision]
		if !ok {
			t.Fatalf("unexpected rollout %+v", r.Rollout)
		}
		svc, rel, _ := sc.Release(r.Revision)
		if r.Missing == "" && (!r.Start.Equal(rel.At) || r.Previous != svc.Initial || r.Deployment != svc.Name) {
			t.Errorf("%s: rollout %+v, want start %s from %s", r.Revision, r.Rollout, rel.At, svc.Initial)
		}
		if r.Decision != want.Decision {
			t.Errorf("%s seed %d %s: decision %s (%s), want %s\n%s", sc.Name, sc.History.Seed, r.Revision, r.Decision, r.Reason, want.Decision, rolloutTransitions(r))
			continue
		}
		if r.Decision != backtest.Rollback {
			out = append(out, fmt.Sprintf("%s %s: %s, %d evaluations, previous revision gone at %v", sc.Name, r.Revision, r.Decision, r.Evaluations, r.Completed))
			continue
		}
		if want.Phase != "" && string(r.Phase) != want.Phase {
			t.Errorf("%s seed %d %s: rolled back in the %s phase, want %s", sc.Name, sc.History.Seed, r.Revision, r.Phase, want.Phase)
		}
		visible, bar := deadline(t, pol.System(r.System), svc, rel, truth, rep.From)
		out = append(out, fmt.Sprintf("%s %s: rollback at %s by %v in the %s phase, %s after the effect began, %s after it was visible (bar: %s)",
			sc.Name, r.Revision, r.RollbackAt.Format(time.TimeOnly), r.Firing, r.Phase, r.RollbackAt.Sub(rel.EffectAt()), r.RollbackAt.Sub(visible), bar.Sub(visible)),
			"delay "+r.RollbackAt.Sub(visible).String())
		if r.RollbackAt.Before(rel.EffectAt()) || r.RollbackAt.After(bar) {
			t.Errorf("%s seed %d %s: rollback at %s, want between the effect at %s and %s (visible from %s for the hold, + 3 intervals)",
				sc.Name, sc.History.Seed, r.Revision, r.RollbackAt.Format(time.TimeOnly), rel.EffectAt().Format(time.TimeOnly), bar.Format(time.TimeOnly), visible.Format(time.TimeOnly))
		}
		if r.Evidence == nil || len(r.Evidence.Triggers) == 0 {
			t.Errorf("%s: rollback without evidence", r.Revision)
		}
	}
	return out
}

// judgeWindow is the window of the built-in watch policy's judge queries.
const judgeWindow = 5 * time.Minute

// deadline computes, from the generator's exact counts and independently of
// PromQL, the phases and the references, when a bad release's effect became
// visible to a judge trigger for as long as the trigger's hold: the start of
// the first run of evaluation instants, lasting at least the hold, at which
// the trigger's test holds on the new revision's exact counts over its
// window (with at least the traffic guard's rate), against the previous
// revision's exact counts over the same window while it served, else
// against the previous revision's over the hour before the rollout. The rollback is due by the earliest such start plus
// the hold, plus 3 intervals.
func deadline(t *testing.T, sys *policy.System, svc releases.Service, rel releases.Release, truth releases.Truth, grid0 time.Time) (visible, bar time.Time) {
	t.Helper()
	step := sys.Interval
	first := grid0.Add((rel.EffectAt().Sub(grid0) + step - 1) / step * step)
	runs := make([]time.Time, len(sys.Triggers)) // start of each trigger's run
	for at := first; at.Before(first.Add(2*time.Hour)) && bar.IsZero(); at = at.Add(step) {
		c := truth.Between(svc.Name, rel.Hash, at.Add(-judgeWindow), at)
		b := truth.Between(svc.Name, svc.Initial, at.Add(-judgeWindow), at)
		if b.Requests == 0 {
			b = truth.Between(svc.Name, svc.Initial, rel.At.Add(-time.Hour), rel.At)
		}
		// The traffic guard: below traffic.atLeast requests per second
		// over the window nothing is judged (the window is the traffic
		// query's too).
		guarded := sys.Traffic != nil && c.Requests/judgeWindow.Seconds() < sys.Traffic.AtLeast
		for i, tr := range sys.Triggers {
			if tr.Form != policy.FormJudge || guarded && tr.Guarded || !oracleHolds(tr.Judge, c, b) {
				runs[i] = time.Time{}
				continue
			}
			if runs[i].IsZero() {
				runs[i] = at
			}
			if at.Sub(runs[i]) >= tr.For && (bar.IsZero() || at.Add(3*step).Before(bar)) {
				visible, bar = runs[i], at.Add(3*step)
			}
		}
	}
	if visible.IsZero() {
		t.Fatalf("the effect of %s never became visible in the exact counts for as long as a hold", rel.Hash)
	}
	return visible, bar
}

func oracleHolds(j *policy.Judge, c, b releases.Count) bool {
	opts := judge.Options{Alpha: j.Alpha, MinEffect: j.MinEffect, Direction: judge.Direction(j.Direction)}
	switch {
	case j.Test == "latency":
		return judge.Latency(buckets(c), buckets(b), j.Quantile, opts).Holds
	case j.Above != nil:
		return judge.ProportionAbove(judge.Counts{Bad: c.Errors, Total: c.Requests}, *j.Above, opts).Holds
	default:
		return judge.Proportion(judge.Counts{Bad: c.Errors, Total: c.Requests}, judge.Counts{Bad: b.Errors, Total: b.Requests}, opts).Holds
	}
}

func buckets(c releases.Count) []judge.Bucket {
	out := make([]judge.Bucket, len(c.Buckets))
	for i, n := range c.Buckets {
		le := math.Inf(1)
		if i < len(releases.Buckets) {
			le = releases.Buckets[i]
		}
		out[i] = judge.Bucket{Le: le, Count: n}
	}
	return out
}

func rolloutTransitions(r backtest.RolloutReport) string {
	var b strings.Builder
	for _, tr := range r.Transitions {
		b.WriteString(tr.At.Format(time.TimeOnly) + " " + tr.Trigger + " " + string(tr.From) + "→" + string(tr.To) + " " + tr.Reason + "\n")
	}
	return b.String()
}

// TestDailyRampNeedsSeasons: the same good release during the daily ramp,
// judged against the hour before it only (no seasonal reference), is rolled
// back — the peak every day looks like a regression. The seasonal
// references are what keep it from being blamed.
func TestDailyRampNeedsSeasons(t *testing.T) {
	var sc releases.Scenario
	for _, s := range releases.Scenarios() {
		if s.Name == "good-release-daily-ramp" {
			sc = s
		}
	}
	sc.Watched[0].History = "{ window: 1h, seasons: [], minSeasons: 0 }"
	rep, _ := replayScenario(t, sc, nil)
	if len(rep.Rollouts) != 1 || rep.Rollouts[0].Decision != backtest.Rollback || rep.Rollouts[0].Phase != "history" {
		t.Fatalf("without seasons: %+v", rep.Rollouts)
	}
	t.Logf("without seasonal references the good release is rolled back at %s by %v", rep.Rollouts[0].RollbackAt.Format(time.TimeOnly), rep.Rollouts[0].Firing)
}
