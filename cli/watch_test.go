package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/internal/releases"
	"github.com/rewind-sre/rewind/internal/testenv"
)

func TestPolicyDefaultWatchValidates(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "default", "--watch")
	if code != 0 || !strings.Contains(out, "deployment: dwcp-manager") || !strings.Contains(out, `selector: 'namespace="dwcp",app="dwcp-manager"'`) {
		t.Fatalf("policy default --watch: %d\n%s", code, out)
	}
	p := writeFile(t, "p.yaml", out)
	if code, out, errs := runCLI(t, "validate", "--policy", p); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("validate default --watch: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "policy", "default", "--canary"); code != ExitError || !strings.Contains(errs, "unknown flag: --canary") {
		t.Fatalf("unknown flag: %d %s", code, errs)
	}
}

// watchHistory is a history of five watched services, each showing one
// case: a release that turns slow after the rollout (judged against
// history), a good release followed by an incident shared with an
// undeployed peer, a bad release at 0.5 req/s, and a release that
// kube-state-metrics missed.
func watchHistory() (releases.History, []releases.Watched) {
	at := func(d time.Duration) time.Time { return releases.T0.Add(d) }
	slow := releases.Reference("a", "checkout", "5c9d7f6b8")
	slow.Releases = []releases.Release{{Hash: "8b6d5c7f9", At: at(10 * time.Minute), Step: time.Minute, LatencyFactor: 3, EffectAfter: 30 * time.Minute}}
	inc := releases.Incident{From: at(40 * time.Minute), To: at(60 * time.Minute), ErrorRate: 0.08}
	orders := releases.Reference("b", "orders", "6d8f7b9c5")
	orders.Releases = []releases.Release{{Hash: "9f7c6b5d8", At: at(20 * time.Minute), Step: time.Minute}}
	orders.Incidents = []releases.Incident{inc}
	payments := releases.Reference("b", "payments", "7c5d9f8b6")
	payments.Incidents = []releases.Incident{inc}
	ledger := releases.Reference("c", "ledger", "3f6b5c8d7")
	ledger.Profile.RPS = 0.5
	ledger.Releases = []releases.Release{{Hash: "7f5d9c6b8", At: at(10 * time.Minute), Step: time.Minute, ErrorRate: 0.10}}
	billing := releases.Reference("d", "billing", "6c9b8d7f5")
	billing.Releases = []releases.Release{{Hash: "4d7f6c9b8", At: at(10 * time.Minute), Step: time.Minute, ErrorRate: 0.10, NoKSM: true}}
	h := releases.History{Start: releases.T0, Duration: 150 * time.Minute, Seasons: []time.Duration{24 * time.Hour}, Seed: 11,
		Services: []releases.Service{slow, orders, payments, ledger, billing}}
	none := []string{}
	return h, []releases.Watched{
		{Service: "checkout", Peers: none}, {Service: "orders", Peers: []string{"payments"}},
		{Service: "payments", Peers: none}, {Service: "ledger", Peers: none}, {Service: "billing", Peers: none},
	}
}

// TestWatchBacktestEmbeddedAndRealPrometheusAgree: `rewind backtest` over
// rollouts gives the same rollouts, decisions, times and transitions with
// the embedded engine (--data) and with the real Prometheus server
// (--prometheus) on the same history.
func TestWatchBacktestEmbeddedAndRealPrometheusAgree(t *testing.T) {
	h, watched := watchHistory()
	data, _, err := releases.Generate(h)
	if err != nil {
		t.Fatal(err)
	}
	prom := testenv.StartPrometheus(t, data)
	dataFile := writeFile(t, "history.om", string(data))
	pol := writeFile(t, "watch.yaml", string(releases.WatchPolicy(h, watched)))
	from, to := fmt.Sprint(h.Start.Unix()), fmt.Sprint(h.Start.Add(h.Duration).Unix())
	run := func(src ...string) backtest.Report {
		args := append([]string{"backtest", "--policy", pol, "--from", from, "--to", to, "--output", "json"}, src...)
		code, out, stderr := runCLI(t, args...)
		if code != ExitRollback {
			t.Fatalf("%v: exit %d, want 2\n%s", src, code, stderr)
		}
		var rep backtest.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	real, emb := run("--prometheus", prom.URL), run("--data", dataFile)
	want := map[string]string{"8b6d5c7f9": "rollback history", "9f7c6b5d8": "shared-incident", "7f5d9c6b8": "rollback compare", "4d7f6c9b8": "inconclusive"}
	key := func(rep backtest.Report) string {
		var b strings.Builder
		for _, r := range rep.Rollouts {
			fmt.Fprintf(&b, "%s %s %s<-%s %s", r.System, r.Start.Format(time.TimeOnly), r.Revision, r.Previous, r.Decision)
			if r.RollbackAt != nil {
				fmt.Fprintf(&b, " at %s by %v in %s", r.RollbackAt.Format(time.TimeOnly), r.Firing, r.Phase)
			}
			fmt.Fprintf(&b, " (%d evaluations)\n", r.Evaluations)
			for _, tr := range r.Transitions {
				fmt.Fprintf(&b, "  %s %s %s→%s\n", tr.At.Format(time.TimeOnly), tr.Trigger, tr.From, tr.To)
			}
		}
		return b.String()
	}
	if k := key(real); k != key(emb) {
		t.Fatalf("the real server and the embedded engine differ:\nreal:\n%s\nembedded:\n%s", k, key(emb))
	}
	if len(real.Rollouts) != len(want) {
		t.Fatalf("rollouts: %s", key(real))
	}
	for _, r := range real.Rollouts {
		got := r.Decision
		if r.Decision == backtest.Rollback {
			got += " " + string(r.Phase)
		}
		if got != want[r.Revision] {
			t.Errorf("%s %s: %s, want %s", r.System, r.Revision, got, want[r.Revision])
		}
	}
	t.Logf("both find %d rollouts and decide alike:\n%s", len(real.Rollouts), summary(real))

	// analyze on a watch system replays its rollouts up to now: at 09:48 the
	// slow release of checkout has just been rolled back (at 09:47, the
	// seed's 5-minute hold after the slowdown shows against history).
	withURL := writeFile(t, "watch-live.yaml", strings.Replace(string(releases.WatchPolicy(h, watched)),
		"  - name: checkout\n    interval: 30s\n", "  - name: checkout\n    interval: 30s\n    prometheus: { url: '"+prom.URL+"' }\n", 1))
	code, out, stderr := runAt(t, h.Start.Add(48*time.Minute), "analyze", "--policy", withURL, "--system", "checkout")
	if code != ExitRollback || !strings.Contains(out, "checkout: rollout of a/checkout to 8b6d5c7f9 (from 5c9d7f6b8) at 2026-03-02T09:10:00Z: ROLLBACK at 2026-03-02T09:47:00Z") {
		t.Fatalf("analyze at 09:48: exit %d\n%s%s", code, out, stderr)
	}

	// The text report names each rollout with its decision.
	code, out, _ = runCLI(t, "backtest", "--policy", pol, "--from", from, "--to", to, "--data", dataFile)
	for _, s := range []string{"checkout: rollout of a/checkout to 8b6d5c7f9 (from 5c9d7f6b8) at 2026-03-02T09:10:00Z: ROLLBACK at", "orders: rollout of b/orders to 9f7c6b5d8", "SHARED INCIDENT", "billing: rollout of d/billing to 4d7f6c9b8", "INCONCLUSIVE — revision pod_template_hash=\"4d7f6c9b8\"", "payments: no rollout in"} {
		if code != ExitRollback || !strings.Contains(out, s) {
			t.Fatalf("text report (exit %d) lacks %q:\n%s", code, s, out)
		}
	}
}

func summary(rep backtest.Report) string {
	var b strings.Builder
	for _, r := range rep.Rollouts {
		fmt.Fprintf(&b, "  %s %s: %s", r.System, r.Revision, r.Decision)
		if r.RollbackAt != nil {
			fmt.Fprintf(&b, " at %s (%s phase) by %v", r.RollbackAt.Format(time.TimeOnly), r.Phase, r.Firing)
		}
		b.WriteString("\n")
	}
	return b.String()
}
