package observe_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/decide"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/observe"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/source/embedded"
	"github.com/rewind-sre/rewind/source/prometheus"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// corpus is the scenario corpus as systems of one fleet: every fault kind,
// healthy canaries at low and high traffic, a canary without series, each
// system with its own system label in one TSDB.
func corpus() []scenario.Config {
	kinds := []string{
		scenario.FaultNone, scenario.FaultErrorRate, scenario.FaultLatency, scenario.FaultSuccessRate,
		scenario.FaultThroughput, scenario.FaultByzantine, scenario.FaultDAGCorruption, scenario.FaultMemory,
		scenario.FaultCircuitBreaker, scenario.FaultNoTraffic, scenario.FaultGap, scenario.FaultErrorBump,
		scenario.FaultLatencySpread, scenario.FaultSparseErrors,
	}
	var out []scenario.Config
	for i, k := range kinds {
		for j, rps := range []float64{0.3, 5} {
			c := scenario.Healthy(t0, time.Hour, rps, uint64(7+i*13+j))
			c.Fault = scenario.Fault{Kind: k, At: t0.Add(time.Duration(20+i) * time.Minute), For: map[bool]time.Duration{true: 10 * time.Minute}[k == scenario.FaultGap || k == scenario.FaultErrorBump]}
			out = append(out, c)
		}
	}
	none := scenario.Healthy(t0, time.Hour, 5, 99)
	none.NoCanary = true
	out = append(out, none)
	for i := range out {
		out[i].Labels = map[string]string{"system": fmt.Sprintf("s%d", i)}
	}
	return out
}

// fleetPolicy is the built-in policy for every system of the corpus, and
// two systems written differently: one whose selectors name the labels in
// another order with a metric-name regex trigger of its own (its shapes
// stay its own), and one reading every system at once.
func fleetPolicy(t testing.TB, n int) *policy.Policy {
	t.Helper()
	def := string(policy.Default())
	head, sys, _ := strings.Cut(def, "systems:\n")
	var b strings.Builder
	b.WriteString(head + "systems:\n")
	for i := range n {
		s := strings.Replace(sys, "name: dwcp-manager", fmt.Sprintf("name: s%d", i), 1)
		canary, baseline := fmt.Sprintf(`system="s%d",version="canary"`, i), fmt.Sprintf(`system="s%d",version="baseline"`, i)
		if i == 1 || i == 2 { // a shape that is not grouped: one query per system
			s = strings.Replace(s, "    triggers:\n", "    triggers:\n      - name: absent-canary\n        expr: 'absent(http_requests_total{ {{selector}} })'\n        action: notify\n", 1)
		}
		if i == 1 {
			canary, baseline = fmt.Sprintf(`version="canary", system="s%d"`, i), fmt.Sprintf(`version="baseline", system="s%d"`, i)
			s = strings.Replace(s, "    triggers:\n", "    triggers:\n      - name: custom-ratio\n        query: 'sum(rate({__name__=~\"http_requests_total\",status=\"500\", {{selector}} }[5m])) / sum(rate(http_requests_total{ {{selector}} }[5m]))'\n        condition: canary > baseline * 3\n        for: 1m\n", 1)
		}
		s = strings.Replace(s, `selector: 'version="canary"'`, "selector: '"+canary+"'", 1)
		s = strings.Replace(s, `selector: 'version="baseline"'`, "selector: '"+baseline+"'", 1)
		b.WriteString(s)
	}
	p, err := policy.Parse("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func history(t testing.TB, cs []scenario.Config) []byte {
	t.Helper()
	var om bytes.Buffer
	if err := scenario.WriteAll(&om, cs); err != nil {
		t.Fatal(err)
	}
	return om.Bytes()
}

// differential evaluates every system of pol at every step, once alone
// (observe.Cycle, the reference) and once in a batch with grouped queries,
// and requires identical observations and decisions.
func differential(t *testing.T, src rewind.Source, pol *policy.Policy, from, to time.Time, step time.Duration, limit int) {
	t.Helper()
	ctx := context.Background()
	batch := observe.NewBatch(pol.Systems, observe.BatchOptions{MaxMembers: 25})
	alone := make([]*decide.SystemState, len(pol.Systems))
	grouped := make([]*decide.SystemState, len(pol.Systems))
	for i, s := range pol.Systems {
		alone[i], grouped[i] = decide.NewSystemState(s), decide.NewSystemState(s)
	}
	perSystem, sent, decisions, evals := 0, 0, 0, 0
	for at := from; !at.After(to); at = at.Add(step) {
		answers := batch.Fetch(ctx, src, at, limit)
		sent += answers.Sent
		for i, s := range pol.Systems {
			want := observe.Cycle(ctx, src, s, at, limit)
			perSystem += len(s.Queries())
			got := answers.Observe(ctx, s, limit)
			if !reflect.DeepEqual(got, want) {
				for j := range want {
					if !reflect.DeepEqual(got[j], want[j]) {
						t.Fatalf("%s %s at %s:\n grouped %+v\n   alone %+v", s.Name, want[j].Trigger, at.Format(time.TimeOnly), got[j], want[j])
					}
				}
			}
			ca, cg := alone[i].Apply(at, want, pol.Hash), grouped[i].Apply(at, got, pol.Hash)
			if !reflect.DeepEqual(ca, cg) {
				t.Fatalf("%s at %s: decisions differ:\n grouped %+v\n   alone %+v", s.Name, at, cg, ca)
			}
			evals++
			if ca.Decision != nil {
				decisions++
			}
		}
	}
	if decisions == 0 {
		t.Fatal("no rollback decided in the corpus: the comparison proves little")
	}
	t.Logf("%d system evaluations, %d rollback decisions, identical; %d queries alone, %d grouped (%d per cycle); ungrouped shapes: %q",
		evals, decisions, perSystem, sent, len(batch.Queries()), batch.Ungrouped)
	if len(batch.Ungrouped) == 0 {
		t.Error("every shape was grouped: the fallback to per-system queries went untested")
	}
	if len(batch.Queries())*3 > len(pol.Systems[0].Queries())*len(pol.Systems) {
		t.Errorf("%d grouped queries per cycle for %d systems of %d queries", len(batch.Queries()), len(pol.Systems), len(pol.Systems[0].Queries()))
	}
}

// TestGroupedEqualsPerSystemEmbedded: on the scenario corpus, through the
// embedded PromQL engine, grouped evaluation decides exactly as per-system
// evaluation, at every step of the hour.
func TestGroupedEqualsPerSystemEmbedded(t *testing.T) {
	cs := corpus()
	db, err := embedded.Open(embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.LoadOpenMetrics(bytes.NewReader(history(t, cs))); err != nil {
		t.Fatal(err)
	}
	differential(t, db, fleetPolicy(t, len(cs)), t0.Add(5*time.Minute), t0.Add(time.Hour), 30*time.Second, 1)
}

// TestGroupedEqualsPerSystemPrometheus: the same against the real
// Prometheus server (its own PromQL engine and HTTP API), every 2 minutes.
func TestGroupedEqualsPerSystemPrometheus(t *testing.T) {
	cs := corpus()
	p := testenv.StartPrometheus(t, history(t, cs))
	src, err := prometheus.New(prometheus.Config{URL: p.URL, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	differential(t, src, fleetPolicy(t, len(cs)), t0.Add(5*time.Minute), t0.Add(time.Hour), 2*time.Minute, 8)
}
