package watch

import (
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

var start = time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)

func TestRewrite(t *testing.T) {
	refs := References(policy.History{Window: time.Hour, Seasons: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}})
	q := `sum(increase(http_requests_total{status=~"5..", namespace="dwcp",app="dwcp-manager" }[5m]))`
	want := map[string]string{
		"before": `sum(increase(http_requests_total{app="dwcp-manager",namespace="dwcp",status=~"5.."}[1h] @ 1772442600.000))`,
		"1d":     `sum(increase(http_requests_total{app="dwcp-manager",namespace="dwcp",status=~"5.."}[1h] offset 23h30m))`,
		"1w":     `sum(increase(http_requests_total{app="dwcp-manager",namespace="dwcp",status=~"5.."}[1h] offset 6d23h30m))`,
	}
	for _, r := range refs {
		got, err := r.Rewrite(q, start)
		if err != nil || got != want[r.Name] {
			t.Errorf("%s: %s %v\nwant %s", r.Name, got, err, want[r.Name])
		}
	}
	// Offsets are kept, instant selectors moved, subqueries moved whole.
	for q, w := range map[string]string{
		`sum by (le) (increase(x_bucket{a="b"}[5m] offset 1m))`: `sum by (le) (increase(x_bucket{a="b"}[1h] offset 23h31m))`,
		`max(x{a="b"} / (y{a="b"} > 0)) > 0.95`:                 `max(x{a="b"} offset 23h30m / (y{a="b"} offset 23h30m > 0)) > 0.95`,
		`max_over_time(rate(x[1m])[5m:30s])`:                    `max_over_time(rate(x[1m])[1h:30s] offset 23h30m)`,
	} {
		got, err := refs[1].Rewrite(q, start)
		if err != nil || got != w {
			t.Errorf("%s → %s %v, want %s", q, got, err, w)
		}
	}
	if _, err := refs[0].Rewrite("sum(", start); err == nil {
		t.Error("a syntax error must fail")
	}
	from, to := refs[0].Span(start, start.Add(time.Hour))
	if !from.Equal(start.Add(-time.Hour)) || !to.Equal(start) {
		t.Errorf("before span %s %s", from, to)
	}
	from, to = refs[1].Span(start, start.Add(time.Hour))
	if !from.Equal(start.Add(time.Hour-24*time.Hour-30*time.Minute)) || to.Sub(from) != time.Hour {
		t.Errorf("1d span %s %s", from, to)
	}
}

func obs(outcome rewind.Outcome, p float64, reason string) rewind.Observation {
	o := rewind.Observation{Outcome: outcome, Reason: reason, Readings: []rewind.Reading{{Side: "canary total"}, {Side: "baseline total"}}}
	if p >= 0 {
		o.Judge = &rewind.Judgement{PValue: p}
	}
	return o
}

// TestCombine: the rules that turn one trigger's judgements against each
// reference into one observation.
func TestCombine(t *testing.T) {
	h := &historySystem{refs: References(policy.History{Window: time.Hour, Seasons: []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}}), start: start, minSeasons: 1}
	T, F, N, E := rewind.OutcomeTrue, rewind.OutcomeFalse, rewind.OutcomeNoData, rewind.OutcomeError
	for _, c := range []struct {
		name     string
		in       []rewind.Observation
		want     rewind.Outcome
		contains string
	}{
		{"worse than every reference", []rewind.Observation{obs(T, 1e-5, "b"), obs(T, 1e-3, "d"), obs(T, 1e-4, "w")}, T, "before p=1e-05, 1d p=0.001, 1w p=0.0001"},
		{"a week without data does not matter", []rewind.Observation{obs(T, 1e-5, "b"), obs(T, 1e-3, "d"), obs(N, -1, "no series")}, T, "(before p=1e-05, 1d p=0.001)"},
		{"yesterday at this hour was as bad: the daily peak", []rewind.Observation{obs(T, 1e-5, "b"), obs(F, 0.4, "d"), obs(T, 1e-4, "w")}, F, "not worse than history 1d"},
		{"no seasonal reference", []rewind.Observation{obs(T, 1e-5, "b"), obs(N, -1, "no series"), obs(N, -1, "no series")}, N, "history needs 1 seasonal reference(s) with data, has 0 (1d: no series; 1w: no series)"},
		{"nothing before the rollout", []rewind.Observation{obs(N, -1, "too few"), obs(T, 1e-3, "d"), obs(T, 1e-4, "w")}, N, "no judgement against the window before the rollout"},
		{"a failed query", []rewind.Observation{obs(T, 1e-5, "b"), obs(E, -1, "timeout"), obs(T, 1e-4, "w")}, E, "history 1d: timeout"},
	} {
		got := h.combine("error-rate-high", c.in, start.Add(time.Hour))
		if got.Outcome != c.want || !strings.Contains(got.Reason, c.contains) || got.Trigger != "error-rate-high" {
			t.Errorf("%s: %s %q", c.name, got.Outcome, got.Reason)
		}
		if len(got.Readings) != 4 || got.Readings[1].Side != "history before total" || got.Readings[3].Side != "history 1w total" {
			t.Errorf("%s: readings %+v", c.name, got.Readings)
		}
	}
	// Without seasons required, the window before alone decides.
	h.minSeasons = 0
	if got := h.combine("x", []rewind.Observation{obs(T, 1e-5, "b"), obs(N, -1, ""), obs(N, -1, "")}, start); got.Outcome != T {
		t.Errorf("minSeasons 0: %s", got.Outcome)
	}
}

func TestDegraded(t *testing.T) {
	above := 0.03
	ceiling := &policy.Trigger{Form: policy.FormJudge, Judge: &policy.Judge{Test: "proportion", Above: &above}}
	ratio := &policy.Trigger{Form: policy.FormJudge, Judge: &policy.Judge{Test: "proportion", MinEffect: 1.5}}
	j := func(p float64, effect *float64, counts map[string]float64) rewind.Observation {
		return rewind.Observation{Outcome: rewind.OutcomeFalse, Judge: &rewind.Judgement{PValue: p, Effect: effect, MinEffect: 1.5, Counts: counts}}
	}
	for _, c := range []struct {
		name string
		o    rewind.Observation
		t    *policy.Trigger
		want bool
	}{
		{"holds", rewind.Observation{Outcome: rewind.OutcomeTrue}, ratio, true},
		{"significant at 0.05 with the effect", j(0.02, rewind.Float(2), nil), ratio, true},
		{"significant, effect too small", j(0.02, rewind.Float(1.2), nil), ratio, false},
		{"effect, not significant", j(0.2, rewind.Float(3), nil), ratio, false},
		{"against a clean history", j(0.01, nil, map[string]float64{"canaryBad": 5, "baselineBad": 0}), ratio, true},
		{"above the ceiling", j(0.01, rewind.Float(0.05), nil), ceiling, true},
		{"below the ceiling", j(0.01, rewind.Float(0.02), nil), ceiling, false},
		{"no data", rewind.Observation{Outcome: rewind.OutcomeNoData}, ratio, false},
	} {
		if got := degraded(c.o, c.t); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}
