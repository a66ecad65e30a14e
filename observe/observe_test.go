package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/policy"
)

// staticSource answers from a table keyed by substrings of the query.
type staticSource struct {
	answers map[string]any // rewind.Vector or error
	calls   atomic.Int64
}

func (s *staticSource) Query(_ context.Context, q string, at time.Time) (rewind.Vector, error) {
	s.calls.Add(1)
	for k, a := range s.answers {
		if strings.Contains(q, k) {
			if err, ok := a.(error); ok {
				return nil, err
			}
			return a.(rewind.Vector), nil
		}
	}
	return nil, nil
}

func vec(vs ...float64) rewind.Vector {
	out := rewind.Vector{}
	for i, v := range vs {
		out = append(out, rewind.Sample{Labels: map[string]string{"i": fmt.Sprint(i)}, V: v})
	}
	return out
}

const testPolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: s
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    traffic: { query: 'sum(rate(traffic{ {{selector}} }[5m]))', atLeast: 1 }
    triggers:
      - name: ratio
        query: 'sum(ratio{ {{selector}} })'
        condition: canary > baseline * 1.5
      - name: explicit
        canary: 'sum(explicit{version="canary"})'
        condition: canary < 0.95
      - name: alert
        expr: 'max(alert{ {{selector}} }) > 10'
      - name: unsplit
        expr: 'absent(unsplit{ {{selector}} })'
`

func load(t *testing.T) *policy.System {
	t.Helper()
	p, err := policy.Parse("p.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return p.Systems[0]
}

func TestCycle(t *testing.T) {
	sys := load(t)
	boom := fmt.Errorf("%w: 503", rewind.ErrQuery)
	cases := []struct {
		name    string
		answers map[string]any
		want    map[string]rewind.Outcome
		reason  map[string]string
	}{
		{"all healthy", map[string]any{"traffic": vec(5), `ratio{ version="canary" }`: vec(1), `ratio{ version="baseline" }`: vec(1), "explicit": vec(0.99), "alert": vec(1, 2), "unsplit": vec()},
			map[string]rewind.Outcome{"ratio": "false", "explicit": "false", "alert": "false", "unsplit": "false"}, nil},
		{"all bad", map[string]any{"traffic": vec(5), `ratio{ version="canary" }`: vec(2), `ratio{ version="baseline" }`: vec(1), "explicit": vec(0.5), "alert": vec(1, 12), "unsplit": vec(1)},
			map[string]rewind.Outcome{"ratio": "true", "explicit": "true", "alert": "true", "unsplit": "true"}, map[string]string{"alert": "1 of 2 series > 10"}},
		{"no traffic: guarded triggers have no data, the alert form still runs", map[string]any{"traffic": vec(0.2), "alert": vec(11)},
			map[string]rewind.Outcome{"ratio": "no-data", "explicit": "no-data", "alert": "true", "unsplit": "false"}, map[string]string{"ratio": "canary traffic 0.2 req/s is below traffic.atLeast 1"}},
		{"traffic query fails: guarded triggers are degraded", map[string]any{"traffic": boom, "alert": vec(1)},
			map[string]rewind.Outcome{"ratio": "error", "explicit": "error", "alert": "false"}, nil},
		{"empty, NaN and Inf are no data", map[string]any{"traffic": vec(5), `ratio{ version="canary" }`: vec(math.NaN()), `ratio{ version="baseline" }`: vec(1), "explicit": vec(), "alert": vec(math.NaN())},
			map[string]rewind.Outcome{"ratio": "no-data", "explicit": "no-data", "alert": "no-data"}, map[string]string{"ratio": "canary value is NaN or infinite", "explicit": "canary query returned no series"}},
		{"+Inf and -Inf are no data in the alert form, never above or below a threshold", map[string]any{"traffic": vec(5), "alert": vec(math.Inf(1), math.Inf(-1)), "unsplit": vec(math.Inf(1))},
			map[string]rewind.Outcome{"alert": "no-data", "unsplit": "no-data"}, map[string]string{"alert": "expr value is NaN or infinite"}},
		{"a finite sample beside +Inf decides the alert form alone", map[string]any{"traffic": vec(5), "alert": vec(math.Inf(1), 3), "unsplit": vec(math.NaN(), 2)},
			map[string]rewind.Outcome{"alert": "false", "unsplit": "true"}, map[string]string{"unsplit": "1 series match"}},
		{"more than one series is an error naming the query", map[string]any{"traffic": vec(5), `ratio{ version="canary" }`: vec(1, 2), `ratio{ version="baseline" }`: vec(1), "explicit": vec(1)},
			map[string]rewind.Outcome{"ratio": "error"}, map[string]string{"ratio": `canary query returned 2 series, not one: aggregate it in the policy (e.g. sum(...)): sum(ratio{ version="canary" })`}},
		{"baseline missing is no data", map[string]any{"traffic": vec(5), `ratio{ version="canary" }`: vec(1)},
			map[string]rewind.Outcome{"ratio": "no-data"}, map[string]string{"ratio": "baseline query returned no series"}},
		{"failing source is degraded, never a value", map[string]any{"": boom},
			map[string]rewind.Outcome{"ratio": "error", "explicit": "error", "alert": "error", "unsplit": "error"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &staticSource{answers: c.answers}
			obs := Cycle(context.Background(), src, sys, time.Unix(1e9, 0), 4)
			for i, o := range obs {
				if o.Trigger != sys.Triggers[i].Name {
					t.Fatalf("observation %d is of %s", i, o.Trigger)
				}
				if w, ok := c.want[o.Trigger]; ok && o.Outcome != w {
					t.Errorf("%s: outcome %s (%s), want %s", o.Trigger, o.Outcome, o.Reason, w)
				}
				if w, ok := c.reason[o.Trigger]; ok && o.Reason != w {
					t.Errorf("%s: reason %q, want %q", o.Trigger, o.Reason, w)
				}
				if o.Outcome == rewind.OutcomeError && o.Canary != nil {
					t.Errorf("%s: a failed query produced a value", o.Trigger)
				}
				if _, err := json.Marshal(o); err != nil {
					t.Errorf("%s: %v", o.Trigger, err)
				}
				for _, v := range []*float64{o.Canary, o.Baseline} {
					if v != nil && !rewind.IsFinite(*v) {
						t.Errorf("%s: non-finite value %g", o.Trigger, *v)
					}
				}
			}
		})
	}
}

func TestCycleQueriesEachStringOnce(t *testing.T) {
	p, err := policy.Parse("d", policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	sys := p.Systems[0]
	src := &staticSource{answers: map[string]any{"": vec(1)}}
	Cycle(context.Background(), src, sys, time.Unix(1e9, 0), 0)
	if got, want := int(src.calls.Load()), len(sys.Queries()); got != want {
		t.Fatalf("%d queries for %d distinct strings", got, want)
	}
	t.Logf("default policy: %d Prometheus queries per evaluation cycle", src.calls.Load())
}

func TestCycleCancelledContextIsDegraded(t *testing.T) {
	sys := load(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := sourceFunc(func(ctx context.Context) (rewind.Vector, error) { return nil, ctx.Err() })
	for _, o := range Cycle(ctx, src, sys, time.Unix(1e9, 0), 2) {
		if o.Outcome != rewind.OutcomeError || !errors.Is(context.Canceled, context.Canceled) {
			t.Fatalf("%s: %s", o.Trigger, o.Outcome)
		}
	}
}

type sourceFunc func(ctx context.Context) (rewind.Vector, error)

func (f sourceFunc) Query(ctx context.Context, _ string, _ time.Time) (rewind.Vector, error) {
	return f(ctx)
}
