package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-sre/rewind/backtest"
	"github.com/rewind-sre/rewind/gitops"
	"github.com/rewind-sre/rewind/internal/scenario"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/policy"
)

// realPrometheus loads a 1-hour history (error-rate fault at 00:30) into the
// real Prometheus server and writes the default policy pointed at it.
// Scrapes are offset by 7 s from the evaluation times, as real scrapes are.
func realPrometheus(t *testing.T) (prom *testenv.Prometheus, policyFile, dataFile string, t0 time.Time) {
	t.Helper()
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := scenario.Healthy(t0.Add(7*time.Second), time.Hour, 5, 3)
	cfg.Fault = scenario.Fault{Kind: scenario.FaultErrorRate, At: t0.Add(30 * time.Minute)}
	data, err := scenario.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prom = testenv.StartPrometheus(t, data)
	dir := t.TempDir()
	dataFile = filepath.Join(dir, "history.om")
	policyFile = filepath.Join(dir, "policy.yaml")
	pol := strings.Replace(string(policy.Default()), "http://prometheus:9090", prom.URL, 1)
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policyFile, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return prom, policyFile, dataFile, t0
}

func runAt(t *testing.T, now time.Time, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(context.Background(), args, &Env{Stdout: &out, Stderr: &errb, Now: func() time.Time { return now }})
	return code, out.String(), errb.String()
}

func TestAnalyzeAgainstRealPrometheus(t *testing.T) {
	prom, pol, _, t0 := realPrometheus(t)

	code, out, stderr := runAt(t, t0.Add(25*time.Minute), "analyze", "--policy", pol)
	if code != ExitOK {
		t.Fatalf("before the fault: exit %d, want 0 (healthy)\n%s%s", code, out, stderr)
	}
	// The GitOps owner of the canary is looked for; without a cluster it
	// is unknown, and says why, without failing analyze.
	if !strings.Contains(out, "gitops owner: unknown: ") {
		t.Fatalf("analyze does not show the GitOps owner:\n%s", out)
	}
	code, out, stderr = runAt(t, t0.Add(45*time.Minute), "analyze", "--policy", pol, "--output", "json")
	if code != ExitRollback {
		t.Fatalf("after the fault: exit %d, want 2 (rollback)\n%s%s", code, out, stderr)
	}
	var rep backtest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var owners struct {
		Systems []struct{ GitOps *gitops.Status }
	}
	if err := json.Unmarshal([]byte(out), &owners); err != nil || owners.Systems[0].GitOps == nil ||
		owners.Systems[0].GitOps.Mode != gitops.ModeMarkers || owners.Systems[0].GitOps.Error == "" {
		t.Fatalf("analyze's JSON has no GitOps owner status: %v\n%s", err, out)
	}
	s := rep.Systems[0]
	// analyze replays max(for)+interval = 10m30s: 22 evaluations ending now.
	if s.Decision != backtest.Rollback || s.Evaluations != 22 || len(s.Firing) == 0 || s.Evidence == nil || s.Evidence.PolicyHash == "" {
		t.Fatalf("analyze report: %+v", s)
	}
	for _, tr := range s.Evidence.Triggers {
		if tr.State == "firing" && (len(tr.Observation.Readings) == 0 || tr.Observation.Judge == nil && tr.Observation.Canary == nil) {
			t.Fatalf("firing trigger without its evidence: %+v", tr)
		}
	}

	// A metrics backend that fails is never a rollback: inconclusive, exit 3.
	prom.Stop()
	code, out, stderr = runAt(t, t0.Add(45*time.Minute), "analyze", "--policy", pol)
	if code != ExitInconclusive || !strings.Contains(out, "degraded") {
		t.Fatalf("Prometheus down: exit %d, want 3\n%s%s", code, out, stderr)
	}
}

// TestEmbeddedAndRealPrometheusAgree: the embedded source and the real
// server give the same decisions at the same times on the same data.
func TestEmbeddedAndRealPrometheusAgree(t *testing.T) {
	prom, pol, data, t0 := realPrometheus(t)
	from, to := fmt.Sprint(t0.Unix()), fmt.Sprint(t0.Add(time.Hour).Unix())
	run := func(src ...string) backtest.SystemReport {
		args := append([]string{"backtest", "--policy", pol, "--from", from, "--to", to, "--output", "json"}, src...)
		code, out, stderr := runAt(t, t0, args...)
		if code != ExitRollback {
			t.Fatalf("%v: exit %d, want 2\n%s", src, code, stderr)
		}
		var rep backtest.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Systems[0]
	}
	real, emb := run("--prometheus", prom.URL), run("--data", data)
	if !real.RollbackAt.Equal(*emb.RollbackAt) || fmt.Sprint(real.Firing) != fmt.Sprint(emb.Firing) || real.Evaluations != emb.Evaluations {
		t.Fatalf("decisions differ: real server %s %v, embedded %s %v", real.RollbackAt, real.Firing, emb.RollbackAt, emb.Firing)
	}
	key := func(s backtest.SystemReport) []string {
		var k []string
		for _, tr := range s.Transitions {
			k = append(k, fmt.Sprintf("%s %s %s→%s", tr.At.Format(time.TimeOnly), tr.Trigger, tr.From, tr.To))
		}
		return k
	}
	if r, e := key(real), key(emb); strings.Join(r, "\n") != strings.Join(e, "\n") {
		t.Fatalf("transitions differ:\nreal server:\n%s\nembedded:\n%s", strings.Join(r, "\n"), strings.Join(e, "\n"))
	}
	t.Logf("both roll back at %s by %v after %d evaluations, %d identical transitions", real.RollbackAt.Format(time.RFC3339), real.Firing, real.Evaluations, len(real.Transitions))
}
