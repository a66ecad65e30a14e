package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/notify"
	"github.com/rewind-sre/rewind/notify/channels"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/source/embedded"
	"github.com/rewind-sre/rewind/store/sqlite"
	"github.com/rewind-sre/rewind/verify"
)

// testPolicy is the built-in policy's triggers of each form (judged
// proportions and latency, a CEL condition, an alert expression, a health
// check) on a system "checkout", and a second system whose selectors match
// nothing ("quiet": insufficient data). {{sink}} and {{probe}} are local
// receivers.
const testPolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    interval: 30s
    prometheus: { url: "http://127.0.0.1:1" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    traffic:
      query: 'sum(rate(http_requests_total{ {{selector}} }[5m]))'
      atLeast: 0.05
    triggers:
      - name: error-rate-high
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
          minEffect: 1.5
          alpha: 0.01
        for: 2m
      - name: error-rate-ceiling
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
          above: 0.2
          alpha: 0.001
        for: 0s
      - name: latency-p99-high
        judge:
          test: latency
          buckets: 'sum by (le) (increase(http_request_duration_seconds_bucket{ {{selector}} }[5m]))'
          quantile: 0.99
          minEffect: 2
          alpha: 0.001
        for: 2m
      - name: throughput-low
        query: 'avg(sum by (instance) (rate(bullshark_transactions_processed_total{ {{selector}} }[1m])))'
        condition: canary < baseline * 0.5
        for: 10m
      - name: byzantine-attack-detected
        expr: sum(increase(probft_byzantine_events_detected{ {{selector}} }[5m])) > 0
        for: 0s
      - name: canary-health
        probe: { url: "{{probe}}" }
        for: 1m
    rollback:
      mode: automatic
      verify:
        query: |
          sum(rate(http_requests_total{status!~"5..", {{selector}} }[1m]))
            / sum(rate(http_requests_total{ {{selector}} }[1m]))
        condition: baseline >= 0.99
        for: 30s
        timeout: 2m
    notify: [sink]
  - name: quiet
    interval: 30s
    prometheus: { url: "http://127.0.0.1:1" }
    canary:   { selector: 'version="nothing-canary"' }
    baseline: { selector: 'version="nothing-baseline"' }
    triggers:
      - name: error-rate-high
        judge:
          test: proportion
          bad:   'sum(increase(http_requests_total{status=~"5..", {{selector}} }[5m]))'
          total: 'sum(increase(http_requests_total{ {{selector}} }[5m]))'
          minEffect: 1.5
          alpha: 0.01
        for: 2m
    rollback: { mode: automatic }
    notify: [sink]
notifiers:
  sink:
    webhook: { url: "{{sink}}" }
`

// t0 is the start of the test history; the canary goes bad at t0+30m.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const testToken = "s3cret-token-for-the-ui-tests"

// clock is the simulated time of the rollback runner and the UI.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a real controller, SQLite journal, outbox and embedded TSDB holding
// an hour of a canary that goes bad at t0+30m, with the UI over them.
type env struct {
	t      *testing.T
	db     *embedded.DB
	st     *sqlite.Store
	ctl    *controller.Controller
	hist   *History
	clk    *clock
	at     time.Time // the last evaluation
	ui     *UI
	srv    *httptest.Server
	audit  *testenv.Buffer
	sink   *sink
	pol    *policy.Policy
	evDir  string
	cancel context.CancelFunc
}

// sink is the webhook notifier's receiver.
type sink struct {
	mu   sync.Mutex
	got  []string
	srv  *httptest.Server
	fail bool
}

func (s *sink) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

type envOptions struct {
	openReads bool
	header    string // IdentityHeader
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, hist: NewHistory(), clk: &clock{}, audit: &testenv.Buffer{}, evDir: filepath.Join(t.TempDir(), "evidence")}
	cfg := scenario.Healthy(t0, time.Hour, 5, 7)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultErrorRate, At: t0.Add(30 * time.Minute)}
	db, err := scenario.Open(cfg, embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { db.Close() })

	e.sink = &sink{}
	e.sink.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		kind := between(string(body), `"kind":"`, `"`)
		e.sink.mu.Lock()
		e.sink.got = append(e.sink.got, kind)
		e.sink.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.sink.srv.Close)
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(probe.Close)

	text := strings.NewReplacer("{{sink}}", e.sink.srv.URL+"/notify", "{{probe}}", probe.URL+"/healthz").Replace(testPolicy)
	pol, err := policy.Parse("policy.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	e.pol = pol
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	log := slog.New(slog.DiscardHandler)
	ns, err := channels.FromPolicy(pol, channels.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	outbox := &notify.Outbox{Store: st, Notifiers: ns, Router: notify.PolicyRouter(pol), Log: log, PollInterval: 200 * time.Millisecond}
	notices := &notify.Notices{Outbox: outbox, Policy: func() *policy.Policy { return pol }}
	// The daemon's subscribers, in its order: the post-mortem writer, the
	// notices, then the UI's history.
	events := rewind.PublisherFunc(func(ctx context.Context, ev rewind.Event) error {
		if ev.Kind == rewind.EventRollbackEnded && ev.Rollback != nil && ev.Rollback.Evidence != "" {
			if _, err := report.WriteDraft(ctx, st, db, pol.System(ev.System), ev.RollbackID); err != nil {
				t.Errorf("post-mortem of %s: %v", ev.RollbackID, err)
			}
		}
		if err := notices.Publish(ctx, ev); err != nil {
			t.Errorf("notices of %s: %v", ev.Kind, err)
		}
		return e.hist.Publish(ctx, ev)
	})
	progress := func(rb *rewind.Rollback, step rewind.StepRecord) {
		snap := *rb
		snap.Steps = append([]rewind.StepRecord(nil), rb.Steps...)
		_ = events.Publish(context.Background(), rewind.Event{Kind: rewind.EventStep, System: rb.System, RollbackID: rb.ID, Rollback: &snap, Step: &step, At: e.clk.Now()})
	}
	build := func(sys *policy.System) (*plan.Runner, rewind.Source, error) {
		ex := map[rewind.StepName]rewind.Executor{
			rewind.StepCheckBaseline: &verify.Baseline{Source: db, Verify: sys.Rollback.Verify, Now: e.clk.Now},
			rewind.StepEvidence:      &report.Bundle{Dir: e.evDir, Source: db, System: sys, Now: e.clk.Now},
		}
		return &plan.Runner{Store: st, Executors: ex, Now: e.clk.Now, Progress: progress}, db, nil
	}
	// The controller's own clock stays at the first evaluation: Run sets it
	// acting and evaluates once; the test evaluates the later instants.
	first := t0.Add(20 * time.Minute)
	e.at, e.clk.t = first, first
	ctl, err := controller.New(controller.Options{Policy: pol, Store: st, Build: build, Events: events, Now: func() time.Time { return first }})
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = ctl
	var wg sync.WaitGroup
	wg.Go(func() { _ = ctl.Run(ctx) })
	wg.Go(func() { _ = outbox.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		ctl.Wait()
		st.Close()
	})
	testenv.Eventually(t, 10*time.Second, "the controller's first evaluation", func() (bool, string) {
		for _, s := range ctl.Systems() {
			if s.Name == "checkout" && !s.LastCycle.IsZero() {
				return true, ""
			}
		}
		return false, ""
	})

	ui, err := New(Options{Controller: ctl, Rollbacks: st, Notices: st, History: e.hist, Token: []byte(testToken),
		OpenReads: o.openReads, IdentityHeader: o.header, Audit: slog.New(slog.NewTextHandler(e.audit, nil)), Now: e.clk.Now, Version: "test",
		GitOps: func(system string) []string {
			if system != "checkout" {
				return nil
			}
			return []string{"Flux Kustomization flux-system/apps (found by labels on Deployment shop/checkout-canary): SUSPENDED by rollback rb-1 <x>"}
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.ui = ui
	e.srv = httptest.NewServer(ui)
	t.Cleanup(e.srv.Close)
	return e
}

// step evaluates every system at each interval up to until.
func (e *env) step(until time.Time) {
	e.t.Helper()
	for e.at.Before(until) {
		e.at = e.at.Add(30 * time.Second)
		e.clk.Set(e.at)
		for _, name := range []string{"checkout", "quiet"} {
			if _, err := e.ctl.Evaluate(context.Background(), name, e.at); err != nil {
				e.t.Fatalf("evaluating %s at %s: %v", name, e.at, err)
			}
		}
	}
}

// stepUntil evaluates checkout until cond holds of its status, at most until limit.
func (e *env) stepUntil(limit time.Time, what string, cond func(controller.SystemStatus) bool) {
	e.t.Helper()
	for e.at.Before(limit) {
		e.step(e.at.Add(30 * time.Second))
		for _, s := range e.ctl.Systems() {
			if s.Name == "checkout" && cond(s) {
				return
			}
		}
	}
	e.t.Fatalf("by %s: %s did not happen", limit, what)
}

func trigger(s controller.SystemStatus, name string) controller.TriggerStatus {
	for _, t := range s.Triggers {
		if t.Name == name {
			return t
		}
	}
	return controller.TriggerStatus{}
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
