package watch_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/releases"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/rollout"
	"github.com/rewind-sre/rewind/source/embedded"
	"github.com/rewind-sre/rewind/watch"
)

func scenario(t *testing.T, name string) (releases.Scenario, *policy.Policy, *embedded.DB) {
	t.Helper()
	for _, sc := range releases.Scenarios() {
		if sc.Name != name {
			continue
		}
		data, _, err := releases.Generate(sc.History)
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
		pol, err := policy.Parse(name+".yaml", sc.Policy())
		if err != nil {
			t.Fatal(err)
		}
		return sc, pol, db
	}
	t.Fatalf("no scenario %s", name)
	return releases.Scenario{}, nil, nil
}

// TestLiveStartsAWatchAndRollsBackOnce: evaluated as time goes by, a live
// watch system is idle before the release, starts watching the new revision
// when kube-state-metrics shows it, decides the rollback once, and is idle
// again after it.
func TestLiveStartsAWatchAndRollsBackOnce(t *testing.T) {
	sc, pol, db := scenario(t, "bad-release-slower-after-rollout")
	sys := pol.Systems[0]
	live, err := watch.NewLive(pol, sys, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var decided []time.Time
	var started time.Time
	for at := sc.History.Start; at.Before(sc.History.Start.Add(90 * time.Minute)); at = at.Add(sys.Interval) {
		lc := live.Evaluate(ctx, at, pol.Hash)
		if lc.Started {
			started = at
			if lc.Rollout.Revision != "8b6d5c7f9" || lc.Rollout.Previous != "5c9d7f6b8" {
				t.Fatalf("watching %+v", lc.Rollout)
			}
		}
		if lc.Decision != nil {
			decided = append(decided, at)
			if lc.Phase != watch.PhaseHistory || lc.Decision.Firing[0] != "latency-p99-high" {
				t.Fatalf("decision in %s: %v", lc.Phase, lc.Decision.Firing)
			}
		}
		if at.Before(sc.History.Start.Add(10*time.Minute)) && (lc.Rollout != nil || lc.Inconclusive) {
			t.Fatalf("%s: before the release: %+v", at, lc)
		}
	}
	// kube-state-metrics shows the ReplicaSet at its first scrape after the
	// creation (09:10:07): the watch starts at the next evaluation.
	if !started.Equal(sc.History.Start.Add(10*time.Minute+30*time.Second)) || len(decided) != 1 {
		t.Fatalf("started %s, decided %v", started, decided)
	}
	st := live.Status()
	if st.Ended != "rolled back" || st.Rollout == nil || st.Watches != 1 || st.Phase != watch.PhaseHistory || st.Completed.IsZero() {
		t.Fatalf("status %+v", st)
	}
	// The same as the backtest's decision (backtest.TestRolloutScenarios: 09:47:00,
	// the seed's 5m hold after the slowdown shows against history).
	if want := sc.History.Start.Add(47 * time.Minute); !decided[0].Equal(want) {
		t.Fatalf("decided at %s, want %s", decided[0], want)
	}
}

// TestLiveNeverJudgesWithoutKubeStateMetrics: a bad release that
// kube-state-metrics missed leaves the system with insufficient data, never
// a decision.
func TestLiveNeverJudgesWithoutKubeStateMetrics(t *testing.T) {
	sc, pol, db := scenario(t, "missing-kube-state-metrics")
	sys := pol.System("checkout")
	live, err := watch.NewLive(pol, sys, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := watch.LiveCycle{}
	for at := sc.History.Start; at.Before(sc.History.Start.Add(60 * time.Minute)); at = at.Add(sys.Interval) {
		last = live.Evaluate(context.Background(), at, pol.Hash)
		if last.Decision != nil || last.Rollout != nil {
			t.Fatalf("%s: judged %+v", at, last.Rollout)
		}
	}
	if st := live.Status(); st.NotJudged == nil || st.NotJudged.Revision != "4d7f6c9b8" || !last.Inconclusive {
		t.Fatalf("status %+v, last cycle inconclusive %v", st, last.Inconclusive)
	}
}

type failing struct{}

func (failing) Rollouts(context.Context, time.Time) ([]rollout.Rollout, error) {
	return nil, errors.New("connection refused")
}

// TestLiveDiscoveryDownIsBlind: without discovery nothing is judged, and
// three failed cycles make the system blind.
func TestLiveDiscoveryDownIsBlind(t *testing.T) {
	pol, err := policy.Parse("w.yaml", policy.DefaultWatch())
	if err != nil {
		t.Fatal(err)
	}
	live, err := watch.NewLive(pol, pol.Systems[0], nil, failing{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lc watch.LiveCycle
	for i := range 3 {
		lc = live.Evaluate(context.Background(), releases.T0.Add(time.Duration(i)*30*time.Second), pol.Hash)
	}
	if !lc.Blind || lc.Decision != nil || lc.Observations[0].Outcome != rewind.OutcomeError {
		t.Fatalf("cycle %+v", lc.Cycle.Cycle)
	}
}
