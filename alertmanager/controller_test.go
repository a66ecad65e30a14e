package alertmanager

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/controller"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/store/sqlite"
)

const testPolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: dwcp-manager
    interval: 1m
    prometheus: { url: "http://127.0.0.1:1" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: byzantine-attack-detected
        expr: sum(increase(probft_byzantine_events_detected{ {{selector}} }[5m])) > 0
        for: 0s
        severity: warning
    rollback: { mode: automatic }
  - name: quiet
    interval: 1m
    prometheus: { url: "http://127.0.0.1:1" }
    canary:   { selector: 'version="canary"' }
    baseline: { selector: 'version="baseline"' }
    triggers:
      - name: byzantine-attack-detected
        expr: sum(increase(probft_byzantine_events_detected{ {{selector}} }[5m])) > 0
        for: 0s
    rollback: { mode: notify-only }
`

// noData is a Source without any series.
type noData struct{}

func (noData) Query(context.Context, string, time.Time) (rewind.Vector, error) { return nil, nil }

// gate holds the drain step until it is opened.
type gate chan struct{}

func (gate) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) { return nil, nil }
func (g gate) Do(ctx context.Context, _ *rewind.Rollback) (rewind.StepResult, error) {
	select {
	case <-g:
		return rewind.StepResult{Detail: "drained"}, nil
	case <-ctx.Done():
		return rewind.StepResult{}, ctx.Err()
	}
}

// realController runs a controller of testPolicy on a SQLite journal, its
// drain held by the returned gate, until the test ends.
func realController(t *testing.T) (*controller.Controller, *sqlite.Store, gate) {
	t.Helper()
	pol, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	g := make(gate)
	build := func(*policy.System) (*plan.Runner, rewind.Source, error) {
		return &plan.Runner{Store: st, Executors: map[rewind.StepName]rewind.Executor{rewind.StepDrain: g}}, noData{}, nil
	}
	ctl, err := controller.New(controller.Options{Policy: pol, Store: st, Build: build})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctl.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		ctl.Wait()
		st.Close()
	})
	// Run has started once the controller acts: it no longer answers ErrNotActing.
	poll(t, "the controller to act", func() bool {
		_, err := ctl.RollbackOnAlert(ctx, controller.Alert{System: "quiet", Trigger: "x", Labels: map[string]string{"a": "b"}, StartsAt: t0})
		return errors.Is(err, controller.ErrNotifyOnly)
	})
	return ctl, st, g
}

// poll waits up to 30 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestWithTheController: the receiver over the real controller and
// journal: an alert rolls the system back with the alert as evidence; a
// second alert meanwhile finds it busy; after a restart (a new receiver,
// nothing in memory) the same alert is found in the journal; paused and
// notify-only systems are left alone; a journal that cannot be read is a 500.
func TestWithTheController(t *testing.T) {
	ctl, st, g := realController(t)
	rc := New(Options{Controller: ctl, Token: []byte(token), Registerer: prometheus.NewRegistry()})
	byz := alert("alertname", "ProBFTByzantineAttack", LabelSystem, "dwcp-manager", LabelTrigger, "byzantine-attack-detected", "severity", "critical")
	byz.Annotations["runbook_url"] = "https://runbooks.example/byzantine"
	code, resp, out := post(t, rc, "Bearer "+token, payload(byz))
	if code != http.StatusOK || resp.Alerts[0].Result != ResultRollback || resp.Alerts[0].Rollback == "" {
		t.Fatalf("%d %s", code, out)
	}
	id := resp.Alerts[0].Rollback

	other := alert("alertname", "DAGCorruption", LabelSystem, "dwcp-manager", LabelAction, "rollback")
	if _, resp, out := post(t, rc, "Bearer "+token, payload(other)); resp.Alerts[0].Result != ResultBusy || resp.Alerts[0].Rollback != id {
		t.Fatalf("while one is in flight: %s", out)
	}
	close(g)
	var rb *rewind.Rollback
	poll(t, "the rollback to end", func() bool {
		rb, _ = st.Get(context.Background(), id)
		return rb != nil && rb.State != rewind.RollbackRunning
	})
	if rb.State != rewind.RollbackSucceeded || rb.Requester != "rewind" || !strings.Contains(rb.Reason, "ProBFTByzantineAttack") {
		t.Fatalf("rollback: %+v", rb)
	}
	d := rb.Decision
	if d == nil || len(d.Firing) != 1 || d.Firing[0] != "byzantine-attack-detected" || len(d.Triggers) != 1 || d.PolicyHash == "" {
		t.Fatalf("decision: %+v", d)
	}
	ev := d.Triggers[0]
	r := ev.Observation.Readings[0]
	if ev.Severity != "critical" || ev.State != rewind.StateFiring || !ev.ActiveAt.Equal(t0) || r.Side != controller.AlertSide ||
		!strings.Contains(r.Query, `alertname="ProBFTByzantineAttack"`) || !r.At.Equal(t0) {
		t.Fatalf("evidence: %+v", ev)
	}
	for _, want := range []string{"fingerprint " + Fingerprint(byz.Labels), "summary: a byzantine event", "runbook_url: https://runbooks.example/byzantine", "source: http://prometheus.example/graph", "via Alertmanager receiver rewind"} {
		if !strings.Contains(ev.Observation.Reason, want) {
			t.Errorf("the evidence lacks %q: %s", want, ev.Observation.Reason)
		}
	}
	if !controller.CarriesAlert(d, controller.Alert{Labels: byz.Labels, StartsAt: t0}) || controller.CarriesAlert(d, controller.Alert{Labels: byz.Labels, StartsAt: t0.Add(time.Second)}) {
		t.Error("CarriesAlert does not tell the alert by its labels and start")
	}

	restarted := New(Options{Controller: ctl, Token: []byte(token)})
	if _, resp, out := post(t, restarted, "Bearer "+token, payload(byz)); resp.Alerts[0].Result != ResultDuplicate || resp.Alerts[0].Rollback != id {
		t.Fatalf("after a restart: %s", out)
	}
	if err := ctl.SetPaused("dwcp-manager", true); err != nil {
		t.Fatal(err)
	}
	// (other was delivered while busy: a new start makes it a new alert.)
	other.StartsAt = t0.Add(time.Minute)
	if _, resp, out := post(t, rc, "Bearer "+token, payload(other)); resp.Alerts[0].Result != ResultIgnored || !strings.Contains(resp.Alerts[0].Reason, "paused") {
		t.Fatalf("paused: %s", out)
	}
	quiet := alert("alertname", "byzantine-attack-detected", LabelSystem, "quiet")
	if _, resp, out := post(t, rc, "Bearer "+token, payload(quiet)); resp.Alerts[0].Result != ResultIgnored || !strings.Contains(resp.Alerts[0].Reason, "notify-only") {
		t.Fatalf("notify-only: %s", out)
	}
	if rbs, _ := st.List(context.Background(), plan.ListOptions{}); len(rbs) != 1 {
		t.Fatalf("%d rollbacks in the journal, want 1", len(rbs))
	}

	if err := ctl.SetPaused("dwcp-manager", false); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, resp, out := post(t, rc, "Bearer "+token, payload(other)); code != http.StatusInternalServerError || resp.Alerts[0].Result != ResultFailed {
		t.Fatalf("journal closed: %d %s", code, out)
	}
}
