package service

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/plan/plantest"
)

// pair starts a baseline at 1.4.2 and a canary at 1.5.0 with the
// error-rate fault on.
func pair(t *testing.T) (canary, baseline *Service) {
	t.Helper()
	bcfg := fast("baseline")
	bcfg.Release = "1.4.2"
	baseline = start(t, bcfg)
	canary = start(t, fast("canary"))
	if err := canary.SetFault(FaultErrorRate); err != nil {
		t.Fatal(err)
	}
	return canary, baseline
}

// describe is everything the executors may change on a service.
func describe(s *Service) string {
	return fmt.Sprintf("release=%s fault=%s running=%v restarted=%v", s.Release(), s.Fault(), s.Running(), s.Previous() != nil)
}

func testRollback() *rewind.Rollback {
	return &rewind.Rollback{ID: "rb-20260101T000000Z-00000001", System: "dwcp-manager", Reason: "error-rate-high"}
}

func TestUndoSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		canary, baseline := pair(t)
		return Undo{Canary: canary, Baseline: baseline}, testRollback(), func() string { return describe(canary) }
	})
}

func TestUndoRestartsTheCanaryAtTheBaselinesRelease(t *testing.T) {
	canary, baseline := pair(t)
	u := Undo{Canary: canary, Baseline: baseline}
	rb := testRollback()
	changes, err := u.Plan(t.Context(), rb)
	want := []rewind.Change{{Target: "service canary at " + canary.Addr(), Action: "restart", Detail: "restart the canary at the baseline's release: 1.5.0 → 1.4.2"}}
	if err != nil || !reflect.DeepEqual(changes, want) {
		t.Fatalf("Plan: %+v, %v; want %+v", changes, err, want)
	}
	res, err := u.Do(t.Context(), rb)
	if err != nil || res.Skipped || res.Facts["fromRelease"] != "1.5.0" || res.Facts["toRelease"] != "1.4.2" {
		t.Fatalf("Do: %+v, %v", res, err)
	}
	if canary.Release() != "1.4.2" || canary.Fault() != FaultNone {
		t.Errorf("after the undo the canary runs %s with fault %s; want 1.4.2, none", canary.Release(), canary.Fault())
	}
	if failed := serve(t, canary, 500); failed != 0 {
		t.Errorf("the undone canary failed %d of 500 requests", failed)
	}
	if res, err := u.Do(t.Context(), rb); err != nil || !res.Skipped {
		t.Errorf("second Do: %+v, %v; want skipped", res, err)
	}
	if changes, err := u.Plan(t.Context(), rb); err != nil || len(changes) != 0 {
		t.Errorf("Plan after the undo: %+v, %v; want no changes", changes, err)
	}
}

func TestScaleDownSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		canary, _ := pair(t)
		return ScaleDown{Service: canary}, testRollback(), func() string { return describe(canary) }
	})
}

func TestScaleDownStopsTheCanary(t *testing.T) {
	canary, _ := pair(t)
	s := ScaleDown{Service: canary}
	rb := testRollback()
	if changes, err := s.Plan(t.Context(), rb); err != nil || len(changes) != 1 || changes[0].Action != "scale" {
		t.Fatalf("Plan: %+v, %v", changes, err)
	}
	if res, err := s.Do(t.Context(), rb); err != nil || res.Skipped {
		t.Fatalf("Do: %+v, %v", res, err)
	}
	if _, err := get(t, canary.URL()+"/metrics"); err == nil || canary.Running() {
		t.Error("the scaled-down canary still serves")
	}
	if res, err := s.Do(t.Context(), rb); err != nil || !res.Skipped {
		t.Errorf("second Do: %+v, %v; want skipped", res, err)
	}
	if changes, err := s.Plan(t.Context(), rb); err != nil || len(changes) != 0 {
		t.Errorf("Plan after the scale-down: %+v, %v; want no changes", changes, err)
	}
}

// bundleState is every file under dir with its content.
func bundleState(dir string) string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel+"\n"+string(data))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n---\n")
}

func TestEvidenceSuite(t *testing.T) {
	plantest.ExecutorSuite(t, func(t *testing.T) (rewind.Executor, *rewind.Rollback, func() string) {
		canary, _ := pair(t)
		serve(t, canary, 20)
		dir := t.TempDir()
		return Evidence{Service: canary, Dir: dir}, testRollback(), func() string { return bundleState(dir) }
	})
}

// TestEvidenceAfterUndoAndScaleDown runs the plan's order: by the time the
// evidence step runs, the bad process is gone; its requests and its last
// metrics are still in the bundle.
func TestEvidenceAfterUndoAndScaleDown(t *testing.T) {
	canary, baseline := pair(t)
	failed := serve(t, canary, 200)
	rb := testRollback()
	for _, ex := range []rewind.Executor{Undo{Canary: canary, Baseline: baseline}, ScaleDown{Service: canary}} {
		if _, err := ex.Do(t.Context(), rb); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	ev := Evidence{Service: canary, Dir: dir}
	res, err := ev.Do(t.Context(), rb)
	bundle := filepath.Join(dir, rb.ID)
	if err != nil || res.Skipped || res.Facts[plan.FactBundle] != bundle {
		t.Fatalf("Do: %+v, %v", res, err)
	}

	idx, err := ReadIndex(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if idx.Rollback != rb.ID || idx.System != rb.System || idx.Service != "canary" || idx.Collected.IsZero() {
		t.Errorf("index: %+v", idx)
	}
	var names []string
	for _, f := range idx.Files {
		names = append(names, f.Path)
		info, err := os.Stat(filepath.Join(bundle, f.Path))
		if err != nil || info.Size() != f.Bytes || f.What == "" {
			t.Errorf("index entry %+v: file %v, %v", f, info, err)
		}
	}
	if got := strings.Join(names, " "); got != "canary-requests.log canary-metrics.txt canary-metrics-previous.txt" {
		t.Errorf("bundle files %q", got)
	}

	log, _ := os.ReadFile(filepath.Join(bundle, "canary-requests.log"))
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 200 || strings.Count(string(log), fmt.Sprintf(" %d ", http.StatusInternalServerError)) != failed ||
		!strings.Contains(lines[0], "release=1.5.0 fault=error-rate") {
		t.Errorf("request log: %d lines, want 200 with %d errors; first %q", len(lines), failed, lines[0])
	}
	prev, _ := os.ReadFile(filepath.Join(bundle, "canary-metrics-previous.txt"))
	if v := parse(t, prev).value(t, MetricRequests, "status", "500"); v != float64(failed) {
		t.Errorf("previous process's 500s %v, want %d", v, failed)
	}
	now, _ := os.ReadFile(filepath.Join(bundle, "canary-metrics.txt"))
	if v := parse(t, now).value(t, MetricBuildInfo, "release", "1.4.2"); v != 1 {
		t.Errorf("current metrics are not the undone process's")
	}

	if res, err := ev.Do(t.Context(), rb); err != nil || !res.Skipped {
		t.Errorf("second Do: %+v, %v; want skipped", res, err)
	}
}

func TestEvidenceGoesToTheRollbacksBundle(t *testing.T) {
	canary, _ := pair(t)
	rb := testRollback()
	rb.Evidence = filepath.Join(t.TempDir(), "bundle")
	res, err := Evidence{Service: canary, Dir: t.TempDir()}.Do(t.Context(), rb)
	if err != nil || res.Facts[plan.FactBundle] != rb.Evidence {
		t.Fatalf("Do: %+v, %v", res, err)
	}
	if _, err := ReadIndex(rb.Evidence); err != nil {
		t.Error(err)
	}
	if _, err := (Evidence{Service: canary}).Do(t.Context(), testRollback()); err == nil {
		t.Error("Do without a directory succeeded")
	}
}
