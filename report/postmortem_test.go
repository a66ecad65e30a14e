package report_test

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/policy"
	"github.com/rewind-sre/rewind/report"
	"github.com/rewind-sre/rewind/source/embedded"
	"github.com/rewind-sre/rewind/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 1, 1, 14, 20, 0, 0, time.UTC)

// recorded is a finished rollback and its journal, as the store returns them.
func recorded(t *testing.T) (*rewind.Rollback, []plan.JournalEntry) {
	t.Helper()
	var rb rewind.Rollback
	var journal []plan.JournalEntry
	for file, v := range map[string]any{"rollback.json": &rb, "journal.json": &journal} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return &rb, journal
}

func measured() report.Impact {
	return report.Impact{
		From: t0.Add(-5 * time.Minute), To: t0.Add(4 * time.Second),
		CanaryRate: rewind.Float(1.5), BaselineRate: rewind.Float(28.5),
		CanaryErrorRate: rewind.Float(0.025), BaselineErrorRate: rewind.Float(0.008),
		CanaryFirstSeen: t0.Add(-2*time.Hour - 15*time.Minute),
		Thresholds: map[string]string{
			"error-rate-high":  "error ratio ≥ 1.5× baseline, α = 0.01",
			"latency-p99-high": "p99 ≥ 2× baseline, α = 0.001",
		},
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the draft (run go test ./report -update and review the diff):\n%s", path, got)
	}
}

func TestPostMortemGolden(t *testing.T) {
	rb, journal := recorded(t)
	golden(t, "postmortem.golden.md", report.PostMortem(rb, journal, measured()))
}

// A manual rollback whose undo failed, rendered from the step records
// alone (no journal) and without metrics.
func TestPostMortemManualFailedGolden(t *testing.T) {
	rb, _ := recorded(t)
	rb.Decision, rb.Requester, rb.Reason = nil, "alice", "customer-escalation"
	rb.State, rb.Error = rewind.RollbackFailed, "step undo failed: timed out after 2m0s"
	undo := rb.Step(rewind.StepUndo)
	undo.State, undo.Detail, undo.Error, undo.Ended = rewind.StepFailed, "", "timed out after 2m0s", undo.Started.Add(2*time.Minute)
	for _, n := range []rewind.StepName{rewind.StepScaleDown, rewind.StepVerify} {
		s := rb.Step(n)
		s.State, s.Detail, s.Started, s.Ended = rewind.StepSkipped, "not run: step undo failed", undo.Ended, undo.Ended
	}
	rb.Step(rewind.StepVerify).Started = undo.Ended.Add(2 * time.Second)
	rb.Step(rewind.StepVerify).Ended = undo.Ended.Add(2 * time.Second)
	ev := rb.Step(rewind.StepEvidence)
	ev.Started, ev.Ended = undo.Ended, undo.Ended.Add(2*time.Second)
	rb.Ended = ev.Ended.Add(time.Second)
	im := report.Impact{Notes: []string{"no metrics source: impact not estimated"}}
	golden(t, "postmortem-manual-failed.golden.md", report.PostMortem(rb, nil, im))
}

func TestWritePostMortem(t *testing.T) {
	rb, journal := recorded(t)
	rb.Evidence = t.TempDir()
	path, err := report.WritePostMortem(rb, journal, measured())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if filepath.Base(path) != report.PostMortemFile || err != nil || !strings.HasPrefix(string(b), "# Rollback Post-Mortem - 2026-01-01") {
		t.Errorf("%s: %v %.60q", path, err, b)
	}
	rb.Evidence = ""
	if _, err := report.WritePostMortem(rb, journal, measured()); err == nil {
		t.Error("written without a bundle")
	}
}

const impactPolicy = `apiVersion: rewind/v1
kind: Policy
systems:
  - name: checkout
    interval: 15s
    prometheus: { url: "http://127.0.0.1:9" }
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
      - name: latency-p99-high
        expr: 'vector(0) > 1'
        for: 2m
`

// metrics loads the incident into the in-process Prometheus engine: the
// baseline at 28.5 req/s with 0.8% errors all along, the canary from two
// hours before the decision at 1.5 req/s with 2.5% errors.
func metrics(t *testing.T) *embedded.DB { return metricsFrom(t, t0.Add(-2*time.Hour)) }

// metricsFrom is metrics with the canary starting at canaryStart.
func metricsFrom(t *testing.T, canaryStart time.Time) *embedded.DB {
	db, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	app := db.Appender(t.Context())
	const step = 15 * time.Second
	var cOK, cErr, bOK, bErr float64
	for at := t0.Add(-4 * time.Hour); !at.After(t0.Add(10 * time.Minute)); at = at.Add(step) {
		bOK, bErr = bOK+28.5*0.992*15, bErr+28.5*0.008*15
		must(t, app.Append(map[string]string{"__name__": "http_requests_total", "version": "baseline", "status": "200"}, at, bOK))
		must(t, app.Append(map[string]string{"__name__": "http_requests_total", "version": "baseline", "status": "500"}, at, bErr))
		if at.Before(canaryStart) {
			continue
		}
		cOK, cErr = cOK+1.5*0.975*15, cErr+1.5*0.025*15
		must(t, app.Append(map[string]string{"__name__": "http_requests_total", "version": "canary", "status": "200"}, at, cOK))
		must(t, app.Append(map[string]string{"__name__": "http_requests_total", "version": "canary", "status": "500"}, at, cErr))
	}
	must(t, app.Commit())
	return db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func near(v *float64, want, tol float64) bool { return v != nil && math.Abs(*v-want) <= tol*want }

func TestEstimateImpact(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(impactPolicy))
	if err != nil {
		t.Fatal(err)
	}
	sys := p.System("checkout")
	rb, _ := recorded(t)
	im, err := report.EstimateImpact(t.Context(), metrics(t), sys, rb)
	if err != nil {
		t.Fatal(err)
	}
	if !im.From.Equal(t0.Add(-5*time.Minute)) || !im.To.Equal(t0.Add(4*time.Second)) {
		t.Errorf("window %s – %s", im.From, im.To)
	}
	if !near(im.CanaryRate, 1.5, 0.01) || !near(im.BaselineRate, 28.5, 0.01) ||
		!near(im.CanaryErrorRate, 0.025, 0.01) || !near(im.BaselineErrorRate, 0.008, 0.01) {
		t.Errorf("rates: canary %v baseline %v errors %v %v", *im.CanaryRate, *im.BaselineRate, *im.CanaryErrorRate, *im.BaselineErrorRate)
	}
	share, _ := im.CanaryShare()
	affected, _ := im.Affected()
	// 5% of traffic, 1.5 req/s × 304 s × 2.5% ≈ 11.4 failed requests.
	if math.Abs(share-0.05) > 0.001 || math.Abs(affected-1.5*304*0.025) > 0.2 {
		t.Errorf("share %v, affected %v", share, affected)
	}
	if seen := im.CanaryFirstSeen.Sub(t0.Add(-2 * time.Hour)); seen < 0 || seen > time.Minute || im.FirstSeenBefore {
		t.Errorf("canary first seen %s (before: %v)", im.CanaryFirstSeen, im.FirstSeenBefore)
	}
	if len(im.Notes) != 0 || im.Thresholds["error-rate-high"] != "error ratio ≥ 1.5× baseline, α = 0.01" || im.Thresholds["latency-p99-high"] != "> 1" {
		t.Errorf("notes %q, thresholds %q", im.Notes, im.Thresholds)
	}
}

// Without a traffic query or a judged trigger, EstimateImpact says what it
// could not measure and falls back to the recorded error rate.
func TestEstimateImpactNotes(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(strings.Replace(strings.Replace(impactPolicy,
		"    traffic:\n      query: 'sum(rate(http_requests_total{ {{selector}} }[5m]))'\n      atLeast: 0.05\n", "", 1),
		"minEffect: 1.5", "above: 0.03", 1)))
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := recorded(t)
	im, err := report.EstimateImpact(t.Context(), metrics(t), p.System("checkout"), rb)
	if err != nil {
		t.Fatal(err)
	}
	if im.CanaryRate != nil || !near(im.CanaryErrorRate, 0.025, 0.01) || len(im.Notes) != 1 || !strings.Contains(im.Notes[0], "no traffic query") {
		t.Errorf("%+v", im)
	}
}

// rewind postmortem ID: from the store and the metrics source.
func TestDraftPostMortem(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rb, journal := recorded(t)
	final := *rb
	rb.State, rb.Ended = rewind.RollbackRunning, time.Time{}
	must(t, st.Create(t.Context(), rb))
	for _, e := range journal[1:] {
		must(t, st.Save(t.Context(), &final, e))
	}
	p, err := policy.Parse("p.yaml", []byte(impactPolicy))
	must(t, err)
	md, got, err := report.DraftPostMortem(context.Background(), st, metrics(t), p.System("checkout"), rb.ID)
	if err != nil || got.ID != rb.ID {
		t.Fatalf("draft of %s: %v", rb.ID, err)
	}
	for _, want := range []string{
		"| 14:15:00 | First violating sample: error-rate-high |",
		"| 14:21:35 | **System verified healthy** — verify done (1m0s): baseline >= 0.99 held for 1m0s (0.9991) |",
		"- **Canary Share of Traffic:** 5% (canary 1.5 req/s, baseline 28.5 req/s at the decision)",
		"| error-rate-high | critical | 0.025 | 0.008 | `error ratio ≥ 1.5× baseline, α = 0.01` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("draft lacks %q:\n%s", want, md)
		}
	}

	// After the rollback, the controller writes it into the bundle.
	final.Evidence = t.TempDir()
	must(t, st.Save(t.Context(), &final, plan.JournalEntry{State: string(final.State), Detail: "evidence moved"}))
	path, err := report.WriteDraft(t.Context(), st, metrics(t), p.System("checkout"), rb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "First violating sample: error-rate-high") {
		t.Errorf("%s: %v", path, err)
	}
}

// TestCanaryFirstSeenBeforeFirstViolation: a canary that started less than
// a coarse step before its first violating sample is shown first seen no
// later than that sample, in the timeline too.
func TestCanaryFirstSeenBeforeFirstViolation(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(impactPolicy))
	must(t, err)
	rb, journal := recorded(t)
	first := t0.Add(-5*time.Minute - 40*time.Second)
	for i := range rb.Decision.Triggers {
		if rb.Decision.Triggers[i].State == rewind.StateFiring {
			rb.Decision.Triggers[i].ActiveAt = first
		}
	}
	im, err := report.EstimateImpact(t.Context(), metricsFrom(t, first.Add(-20*time.Second)), p.System("checkout"), rb)
	must(t, err)
	if im.CanaryFirstSeen.IsZero() || im.CanaryFirstSeen.After(first) || im.CanaryFirstSeen.Before(first.Add(-20*time.Second)) {
		t.Fatalf("canary first seen %s; first violating sample %s, canary started %s", im.CanaryFirstSeen, first, first.Add(-20*time.Second))
	}
	md := report.PostMortem(rb, journal, im)
	seen, violation := strings.Index(md, "Canary first seen"), strings.Index(md, "First violating sample")
	if seen < 0 || violation < 0 || seen > violation {
		t.Fatalf("the timeline must show the canary first seen before its first violating sample:\n%s", md)
	}
}

// A bundle archived in a bucket is named by its URL in the draft; the draft
// is written into the bundle's local copy.
func TestPostMortemOfArchivedBundle(t *testing.T) {
	rb := &rewind.Rollback{ID: "rb-1", System: "checkout", State: rewind.RollbackSucceeded, Evidence: "s3://evidence/rewind/rb-1/"}
	md := report.PostMortem(rb, nil, report.Impact{})
	for _, want := range []string{"`s3://evidence/rewind/rb-1/` (index: `s3://evidence/rewind/rb-1/INDEX.md`)", "`s3://evidence/rewind/rb-1/metrics.json`"} {
		if !strings.Contains(md, want) {
			t.Errorf("the draft lacks %q:\n%s", want, md)
		}
	}
	if _, err := report.WritePostMortem(rb, nil, report.Impact{}); err == nil {
		t.Error("WritePostMortem wrote into a URL")
	}
}

// A suspended GitOps reconciler is the first action item, with the pull
// request to merge and the command that resumes it.
func TestPostMortemGitOpsActionItem(t *testing.T) {
	rb, journal := recorded(t)
	rb.Steps = append([]rewind.StepRecord{{Name: rewind.StepSuspendGitOps, State: rewind.StepDone,
		Facts: map[string]string{"suspended": "Flux Kustomization flux-system/apps"}}}, rb.Steps...)
	rb.Steps = append(rb.Steps, rewind.StepRecord{Name: rewind.StepGitRevert, State: rewind.StepDone,
		Facts: map[string]string{"pullRequest": "https://github.example.test/shop/apps/pull/7"}})
	got := report.PostMortem(rb, journal, measured())
	want := "| 1 | Merge https://github.example.test/shop/apps/pull/7, then resume Flux Kustomization flux-system/apps (`rewind resume-gitops --system " + rb.System + "`) | @owner | YYYY-MM-DD | Open |\n| 2 |"
	if !strings.Contains(got, want) {
		t.Errorf("action items lack the resume:\n%s", got)
	}
}
