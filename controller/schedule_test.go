package controller

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time for the scheduler.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fleet is a policy of n systems with one alert-form trigger each, over
// the selector system="sI".
func fleet(t *testing.T, n int, interval string) *policy.Policy {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: rewind/v1\nkind: Policy\nsystems:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: s%d
    interval: %s
    canary:   { selector: 'system="s%d",version="canary"' }
    baseline: { selector: 'system="s%d",version="baseline"' }
    triggers:
      - name: errors
        expr: 'sum(errors{ {{selector}} }) > 10'
`, i, interval, i, i)
	}
	p, err := policy.Parse("fleet.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fleetSource answers errors{system=~...} with one series per system named
// in the query, value 1, and lets a test hold or break systems.
type fleetSource struct {
	mu      sync.Mutex
	calls   []string
	hold    map[string]chan struct{} // a query naming the system waits on it
	panics  string                   // a query naming this system panics
	running map[string]int
	peak    map[string]int
}

var systemRE = regexp.MustCompile(`s\d+`)

func (f *fleetSource) Query(ctx context.Context, q string, at time.Time) (rewind.Vector, error) {
	names := systemRE.FindAllString(q, -1)
	f.mu.Lock()
	f.calls = append(f.calls, q)
	var wait chan struct{}
	for _, n := range names {
		if f.running == nil {
			f.running, f.peak = map[string]int{}, map[string]int{}
		}
		f.running[n]++
		f.peak[n] = max(f.peak[n], f.running[n])
		if c := f.hold[n]; c != nil {
			wait = c
		}
	}
	boom := f.panics != "" && strings.Contains(q, `"`+f.panics+`"`)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		for _, n := range names {
			f.running[n]--
		}
		f.mu.Unlock()
	}()
	if boom {
		panic("a source that panics on " + f.panics)
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", rewind.ErrQuery, ctx.Err())
		}
	}
	var out rewind.Vector
	for _, n := range names {
		out = append(out, rewind.Sample{Labels: map[string]string{"system": n}, T: at, V: 1})
	}
	return out, nil
}

type harness struct {
	ctl     *Controller
	clock   *clock
	metrics *Metrics
	log     *testenv.Buffer
	mu      sync.Mutex
	cycles  map[string][]time.Time // system → evaluation instants
}

func (h *harness) seen(system string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.cycles[system]...)
}

// start runs a controller of pol over src with a settable clock; hook sees
// every cycle's event.
func start(t *testing.T, pol *policy.Policy, src rewind.Source, per int, hook func(string, rewind.Event)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{clock: &clock{t: t0}, log: &testenv.Buffer{}, cycles: map[string][]time.Time{}}
	h.metrics = NewMetrics(prometheus.NewRegistry(), "test")
	build := func(*policy.System) (*plan.Runner, rewind.Source, error) {
		return &plan.Runner{Store: st}, src, nil
	}
	h.ctl, err = New(Options{Policy: pol, Store: st, Build: build, Metrics: h.metrics, Now: h.clock.Now, BatchSystems: per,
		Log: slog.New(slog.NewTextHandler(h.log, nil)),
		Events: rewind.PublisherFunc(func(_ context.Context, e rewind.Event) error {
			if e.Kind != rewind.EventEvaluated {
				return nil
			}
			h.mu.Lock()
			h.cycles[e.System] = append(h.cycles[e.System], e.At)
			h.mu.Unlock()
			if hook != nil {
				hook(e.System, e)
			}
			return nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = h.ctl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return h
}

func (h *harness) waitCycles(t *testing.T, system string, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d cycles of %s", n, system), func() (bool, string) {
		got := h.seen(system)
		return len(got) >= n, fmt.Sprint(got, "\n", h.log.String())
	})
}

func TestBatchesPartitionAndSpreadOverTheInterval(t *testing.T) {
	pol := fleet(t, 12, "40s")
	pol.Systems[11].Interval = time.Minute // a system of its own interval
	src, other := &fleetSource{}, &fleetSource{}
	var systems []*system
	for i, cfg := range pol.Systems {
		s := &system{cfg: cfg, source: src}
		if i == 10 {
			s.source = other // and one of its own source
		}
		systems = append(systems, s)
	}
	bs := batches(systems, 3)
	var got []string
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s@%s", b.name, b.phase))
	}
	// The 10 systems on src at 40s (sorted by name): 4 batches of at most
	// 3, a quarter of the interval apart; the other source and the other
	// interval get batches of their own.
	want := []string{"s0…s1@0s", "s2…s4@10s", "s5…s6@20s", "s7…s9@30s", "s10@0s", "s11@0s"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if bs[4].source != other || bs[5].every != time.Minute {
		t.Error("the other source or interval shares a batch")
	}
}

// TestCyclesRunAtTheirPhase: each batch is evaluated at its own phase of the
// interval, every interval, with one query per shape for its systems.
func TestCyclesRunAtTheirPhase(t *testing.T) {
	src := &fleetSource{}
	h := start(t, fleet(t, 8, "40s"), src, 2, nil)
	h.waitCycles(t, "s0", 1)
	h.waitCycles(t, "s1", 1)
	for _, s := range []string{"s2", "s4", "s6"} {
		if got := h.seen(s); len(got) != 0 {
			t.Fatalf("%s evaluated at %v, before its phase", s, got)
		}
	}
	for k, s := range []string{"s2", "s4", "s6"} {
		h.clock.Add(10 * time.Second)
		h.waitCycles(t, s, 1)
		if got := h.seen(s)[0]; !got.Equal(t0.Add(time.Duration(k+1) * 10 * time.Second)) {
			t.Errorf("%s first evaluated at %s, want its phase %s", s, got, time.Duration(k+1)*10*time.Second)
		}
	}
	h.clock.Add(10 * time.Second)
	h.waitCycles(t, "s0", 2)
	if got := h.seen("s0"); !got[1].Equal(t0.Add(40 * time.Second)) {
		t.Errorf("s0 evaluated at %v, want every 40s", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.calls) != 5 { // one grouped query per batch and cycle
		t.Errorf("%d queries for 5 batch cycles: %q", len(src.calls), src.calls)
	}
	if c := src.calls[0]; !strings.Contains(c, `system=~"s0|s1"`) {
		t.Errorf("not a grouped query: %s", c)
	}
}

// TestOverrunIsReportedNeverStacked: a cycle still running when the next
// is due is reported and skipped; the systems never have two cycles at once.
func TestOverrunIsReportedNeverStacked(t *testing.T) {
	release := make(chan struct{})
	src := &fleetSource{hold: map[string]chan struct{}{"s0": release}}
	h := start(t, fleet(t, 1, "10s"), src, 0, nil)
	testenv.Eventually(t, 10*time.Second, "the first cycle to start", func() (bool, string) {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.calls) == 1, ""
	})
	h.clock.Add(10 * time.Second)
	testenv.Eventually(t, 10*time.Second, "an overrun", func() (bool, string) {
		return testutil.ToFloat64(h.metrics.Overruns) == 1, h.log.String()
	})
	if !strings.Contains(h.log.String(), "overran its interval") {
		t.Errorf("no overrun in the log:\n%s", h.log)
	}
	close(release)
	h.waitCycles(t, "s0", 1)
	h.clock.Add(10 * time.Second)
	h.waitCycles(t, "s0", 2)
	if got := h.seen("s0"); !got[1].Equal(t0.Add(20 * time.Second)) {
		t.Errorf("cycles at %v: the overrun one must be skipped, the grid kept", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.peak["s0"] != 1 || len(src.calls) != 2 {
		t.Errorf("%d cycles of s0 at once, %d queries: stacked", src.peak["s0"], len(src.calls))
	}
}

// TestPanicIsRecoveredPerSystem: a panic in one system's query or
// evaluation is logged with the system and counted; that system is failed
// (degraded), the others are evaluated as usual, the daemon goes on.
func TestPanicIsRecoveredPerSystem(t *testing.T) {
	src := &fleetSource{panics: "s1"}
	h := start(t, fleet(t, 3, "10s"), src, 1, func(system string, _ rewind.Event) {
		if system == "s2" {
			panic("a hook that panics")
		}
	})
	// One batch per system, at 0, 3.3 and 6.7 s of the interval.
	h.waitCycles(t, "s0", 1)
	h.clock.Add(10 * time.Second)
	for _, s := range []string{"s0", "s1", "s2"} {
		h.waitCycles(t, s, map[string]int{"s0": 2}[s]+map[bool]int{true: 1}[s != "s0"])
	}
	h.clock.Add(10 * time.Second)
	for _, s := range []string{"s1", "s2"} {
		h.waitCycles(t, s, 2)
	}
	st := map[string]rewind.TriggerState{}
	for _, s := range h.ctl.Systems() {
		st[s.Name] = s.Triggers[0].State
	}
	if st["s0"] != rewind.StateOK || st["s1"] != rewind.StateDegraded || st["s2"] != rewind.StateOK {
		t.Errorf("states %v: want s1 degraded by its panicking query, the others ok", st)
	}
	// The trigger-state metric is read from the same state when scraped.
	want := `
# HELP rewind_trigger_state 1 for each trigger's current state, 0 for the others.
# TYPE rewind_trigger_state gauge
`
	for _, s := range []string{"s0", "s1", "s2"} {
		for _, state := range []string{"degraded", "firing", "insufficient-data", "ok", "pending"} {
			v := 0
			if state == string(st[s]) {
				v = 1
			}
			want += fmt.Sprintf("rewind_trigger_state{state=%q,system=%q,trigger=\"errors\"} %d\n", state, s, v)
		}
	}
	if err := testutil.CollectAndCompare(h.metrics.TriggerState, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if q, hook := testutil.ToFloat64(h.metrics.Panics.WithLabelValues("query")), testutil.ToFloat64(h.metrics.Panics.WithLabelValues("hook")); q != 2 || hook != 2 {
		t.Errorf("panics counted: query %g, hook %g; want 2 each", q, hook)
	}
	log := h.log.String()
	for _, want := range []string{"PANIC recovered", "system=s1", "a source that panics on s1", "system=s2", "a hook that panics"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
