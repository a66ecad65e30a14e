package observe

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// exactSource answers each query by its exact text; unknown queries are
// empty results.
type exactSource map[string]rewind.Vector

func (s exactSource) Query(_ context.Context, q string, _ time.Time) (rewind.Vector, error) {
	return s[q], nil
}

const judgePolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: s
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: fixed
        judge: { test: proportion, bad: 'sum(increase(errors_total{ {{selector}} }[5m]))', total: 'sum(increase(requests_total{ {{selector}} }[5m]))', minEffect: 1.5, alpha: 0.01 }
      - name: sequential
        judge: { test: proportion, bad: 'sum(increase(errors_total{ {{selector}} }[5m]))', total: 'sum(increase(requests_total{ {{selector}} }[5m]))', minEffect: 1.5, alpha: 0.01, sequential: true }
      - name: latency
        judge: { test: latency, buckets: 'sum by (le) (increase(duration_bucket{ {{selector}} }[5m]))', minEffect: 2, sequential: true }
`

// TestJudgeOutcomes: a judge observation says whether the canary is worse
// by the seed's measure (the point estimate) and, for a fixed-window judge,
// whether its window proves it: true, unproven, false, or no data.
func TestJudgeOutcomes(t *testing.T) {
	p, err := policy.Parse("j.yaml", []byte(judgePolicy))
	if err != nil {
		t.Fatal(err)
	}
	sys := p.Systems[0]
	fixed := sys.Triggers[0].Judge
	answers := func(cBad, cTotal, bBad, bTotal float64) exactSource {
		return exactSource{fixed.Canary.Bad: vec(cBad), fixed.Canary.Total: vec(cTotal), fixed.Baseline.Bad: vec(bBad), fixed.Baseline.Total: vec(bTotal)}
	}
	for _, c := range []struct {
		name            string
		src             exactSource
		fixed, sequence rewind.Outcome
	}{
		{"proven: 10 % against 0.5 %", answers(30, 300, 30, 6000), rewind.OutcomeTrue, rewind.OutcomeUnproven},
		{"worse, not significant: 2 of 100 against 0.5 %", answers(2, 100, 30, 6000), rewind.OutcomeUnproven, rewind.OutcomeUnproven},
		{"not worse", answers(1, 300, 30, 6000), rewind.OutcomeFalse, rewind.OutcomeFalse},
		{"one request: cannot decide", answers(1, 1, 30, 6000), rewind.OutcomeNoData, rewind.OutcomeUnproven},
		{"no canary request", answers(0, 0, 30, 6000), rewind.OutcomeNoData, rewind.OutcomeNoData},
	} {
		t.Run(c.name, func(t *testing.T) {
			obs := Cycle(context.Background(), c.src, sys, time.Unix(1e9, 0), 1)
			if obs[0].Outcome != c.fixed || obs[1].Outcome != c.sequence {
				t.Errorf("fixed %s (%s), sequential %s (%s); want %s, %s", obs[0].Outcome, obs[0].Reason, obs[1].Outcome, obs[1].Reason, c.fixed, c.sequence)
			}
			if obs[0].Step != nil {
				t.Error("a fixed-window judge reads no interval counts")
			}
		})
	}
}

// TestSequentialSteps: a sequential judge reads its interval's counts from
// the counter differences the policy derived, besides its windows.
func TestSequentialSteps(t *testing.T) {
	p, err := policy.Parse("j.yaml", []byte(judgePolicy))
	if err != nil {
		t.Fatal(err)
	}
	sys := p.Systems[0]
	j, lj := sys.Triggers[1].Judge, sys.Triggers[2].Judge
	buckets := func(counts ...float64) rewind.Vector {
		les := []string{"0.1", "0.25", "0.5", "+Inf"}
		v := rewind.Vector{}
		for i, c := range counts {
			v = append(v, rewind.Sample{Labels: map[string]string{"le": les[i]}, V: c})
		}
		return v
	}
	src := exactSource{
		j.Canary.Bad: vec(30), j.Canary.Total: vec(300), j.Baseline.Bad: vec(30), j.Baseline.Total: vec(6000),
		j.Canary.BadStep: vec(3), j.Canary.TotalStep: vec(30), j.Baseline.TotalStep: vec(600), // no baseline error series changed
		lj.Canary.Buckets: buckets(100, 200, 280, 300), lj.Baseline.Buckets: buckets(5000, 5950, 5995, 6000),
		lj.Canary.BucketsStep: buckets(10, 20, 28, 30), lj.Baseline.BucketsStep: buckets(500, 595, 600, 600),
	}
	obs := Cycle(context.Background(), src, sys, time.Unix(1e9, 0), 1)
	s := obs[1].Step
	if obs[1].Outcome != rewind.OutcomeUnproven || s == nil || s.Canary.Bad != 3 || s.Canary.Total != 30 || s.Baseline.Bad != 0 || s.Baseline.Total != 600 {
		t.Fatalf("proportion: %s %+v (%s)", obs[1].Outcome, s, obs[1].Reason)
	}
	if !obs[1].Judge.Sequential || !strings.Contains(obs[1].Reason, "worse") {
		t.Fatalf("judgement %+v", obs[1].Judge)
	}
	l := obs[2].Step
	if obs[2].Outcome != rewind.OutcomeUnproven || l == nil || len(l.Canary.Le) != 4 || l.Canary.Cum[3] != 30 || l.Baseline.Cum[1] != 595 || l.Bound != 0.25 {
		t.Fatalf("latency: %s %+v (%s)", obs[2].Outcome, l, obs[2].Reason)
	}
	// NaN interval counts leave the interval uncounted, the outcome as it was.
	src[j.Canary.BadStep] = vec(math.NaN())
	obs = Cycle(context.Background(), src, sys, time.Unix(1e9, 0), 1)
	if obs[1].Outcome != rewind.OutcomeUnproven || obs[1].Step != nil {
		t.Fatalf("NaN interval count: %s %+v", obs[1].Outcome, obs[1].Step)
	}
	src[j.Canary.BadStep] = vec(3)
	// A failed interval query is a failed query.
	delete(src, j.Canary.TotalStep)
	failing := errSource{exactSource: src, fail: j.Canary.TotalStep}
	obs = Cycle(context.Background(), failing, sys, time.Unix(1e9, 0), 1)
	if obs[1].Outcome != rewind.OutcomeError || obs[1].Step != nil {
		t.Fatalf("failed interval query: %s %+v", obs[1].Outcome, obs[1].Step)
	}
}

type errSource struct {
	exactSource
	fail string
}

func (s errSource) Query(ctx context.Context, q string, at time.Time) (rewind.Vector, error) {
	if q == s.fail {
		return nil, rewind.ErrQuery
	}
	return s.exactSource.Query(ctx, q, at)
}
