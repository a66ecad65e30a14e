package evidence_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/evidence"
	"github.com/rewind-sre/rewind/evidence/s3"
	"github.com/rewind-sre/rewind/internal/testenv"
	"github.com/rewind-sre/rewind/plan"
	"github.com/rewind-sre/rewind/store/sqlite"
)

// writer stands for the platform evidence executor and report.Bundle: it
// writes the local bundle.
type writer struct{ dir string }

func (w writer) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) { return nil, nil }
func (w writer) Do(_ context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	d := filepath.Join(w.dir, rb.ID)
	if err := os.MkdirAll(d, 0o750); err != nil {
		return rewind.StepResult{}, err
	}
	for name, content := range map[string]string{"decision.json": `{"system":"` + rb.System + `"}`, "INDEX.md": "# Evidence\n"} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o640); err != nil {
			return rewind.StepResult{}, err
		}
	}
	return rewind.StepResult{Detail: "bundle written", Facts: map[string]string{plan.FactBundle: d}}, nil
}

// seq runs a then b as one step, b's facts winning (as the daemon's
// evidence step does).
type seq struct{ a, b rewind.Executor }

func (s seq) Plan(context.Context, *rewind.Rollback) ([]rewind.Change, error) { return nil, nil }
func (s seq) Do(ctx context.Context, rb *rewind.Rollback) (rewind.StepResult, error) {
	ra, err := s.a.Do(ctx, rb)
	if err != nil {
		return ra, err
	}
	rb2, err := s.b.Do(ctx, rb)
	rb2.Detail = ra.Detail + "; " + rb2.Detail
	return rb2, err
}

// logLines counts the archive's log lines by message.
type logLines struct {
	mu     sync.Mutex
	counts map[string]int
	on     func(msg string)
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.counts[r.Message]++
	on := l.on
	l.mu.Unlock()
	if on != nil {
		on(r.Message)
	}
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }
func (l *logLines) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[msg]
}

type fixture struct {
	m       *testenv.MinIO
	store   *s3.Store
	runner  *plan.Runner
	archive *evidence.Archive
	logs    *logLines
	results atomic.Value
}

func newFixture(t *testing.T) *fixture {
	m := testenv.StartMinIO(t)
	m.CreateBucket("evidence")
	ak, sk := m.WriteCredentials()
	st, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "evidence", Prefix: "rewind/", Insecure: true, AccessKeyFile: ak, SecretKeyFile: sk, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rewind.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	f := &fixture{m: m, store: st, logs: &logLines{counts: map[string]int{}}}
	f.archive = &evidence.Archive{Store: st, Dir: dir, Attempts: 4, Backoff: 200 * time.Millisecond, AttemptTimeout: 3 * time.Second,
		Log: slog.New(f.logs), OnResult: func(r string) { f.results.Store(r) }}
	f.runner = &plan.Runner{Store: db, Executors: map[rewind.StepName]rewind.Executor{rewind.StepEvidence: seq{writer{dir}, f.archive}}}
	return f
}

func TestArchiveToBucket(t *testing.T) {
	f := newFixture(t)
	rb, err := f.runner.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := rb.Step(rewind.StepEvidence)
	if rb.State != rewind.RollbackSucceeded || ev.State != rewind.StepDone {
		t.Fatalf("rollback %s, evidence %s: %s", rb.State, ev.State, ev.Detail)
	}
	if want := "s3://evidence/rewind/" + rb.ID + "/"; rb.Evidence != want {
		t.Errorf("Rollback.Evidence = %q, want %q", rb.Evidence, want)
	}
	r, err := f.store.Open(t.Context(), rb.ID, "decision.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != `{"system":"checkout"}` {
		t.Errorf("decision.json from the bucket: %q", b)
	}
	if f.results.Load() != "archived" {
		t.Errorf("OnResult: %v", f.results.Load())
	}
}

// The bucket goes down as the evidence step starts: the step retries, then
// escalates loudly, and the rollback still succeeds.
func TestBucketDownDuringEvidence(t *testing.T) {
	f := newFixture(t)
	f.runner.Progress = func(rb *rewind.Rollback, s rewind.StepRecord) {
		if s.Name == rewind.StepEvidence && s.State == rewind.StepRunning {
			f.m.Stop()
		}
	}
	start := time.Now()
	rb, err := f.runner.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := rb.Step(rewind.StepEvidence)
	t.Logf("evidence step: %s after %s: %s", ev.State, time.Since(start).Round(time.Millisecond), ev.Detail)
	if rb.State != rewind.RollbackSucceeded {
		t.Errorf("the rollback %s (%s): a missing bucket must not fail it", rb.State, rb.Error)
	}
	if ev.State != rewind.StepEscalated || !strings.Contains(ev.Detail, "NOT archived after 4 attempts") {
		t.Errorf("evidence step %s: %s", ev.State, ev.Detail)
	}
	if n := f.logs.count("archiving the evidence bundle failed"); n != 4 {
		t.Errorf("%d failed attempts logged, want 4", n)
	}
	if f.logs.count("EVIDENCE NOT ARCHIVED: the bundle is only on this pod and is lost with it") != 1 {
		t.Error("no error log line says the evidence was not archived")
	}
	if f.results.Load() != "failed" || ev.Facts[evidence.FactArchiveError] == "" {
		t.Errorf("OnResult %v, facts %v", f.results.Load(), ev.Facts)
	}
	if rb.Evidence != filepath.Join(f.archive.Dir, rb.ID) {
		t.Errorf("Rollback.Evidence = %q: want the local bundle", rb.Evidence)
	}
}

// The bucket comes back while the step retries: the bundle is archived.
func TestBucketBackWhileRetrying(t *testing.T) {
	f := newFixture(t)
	f.archive.Attempts, f.archive.Backoff = 6, time.Second
	f.runner.Progress = func(rb *rewind.Rollback, s rewind.StepRecord) {
		if s.Name == rewind.StepEvidence && s.State == rewind.StepRunning {
			f.m.Stop()
		}
	}
	var once sync.Once
	f.logs.on = func(msg string) {
		if msg == "archiving the evidence bundle failed" {
			once.Do(func() {
				go func() {
					if err := f.m.Restart(); err != nil {
						t.Error(err)
					}
				}()
			})
		}
	}
	rb, err := f.runner.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := rb.Step(rewind.StepEvidence); ev.State != rewind.StepDone || !strings.HasPrefix(rb.Evidence, "s3://evidence/rewind/") {
		t.Fatalf("evidence step %s (%s), Rollback.Evidence %q", ev.State, ev.Detail, rb.Evidence)
	}
	if n := f.logs.count("archiving the evidence bundle failed"); n < 1 {
		t.Errorf("%d failed attempts before the bucket came back", n)
	}
}

// The post-mortem draft, written into the local bundle after the rollback,
// joins the archived bundle.
func TestSyncAddsThePostMortem(t *testing.T) {
	f := newFixture(t)
	rb, err := f.runner.Start(t.Context(), "checkout", "error-rate", "rewind", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.archive.Local(rb.ID), "POSTMORTEM.md"), []byte("# Post-mortem\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	loc, err := f.archive.Sync(t.Context(), rb.ID)
	if err != nil || loc != rb.Evidence {
		t.Fatalf("Sync: %q, %v (bundle at %q)", loc, err, rb.Evidence)
	}
	files, err := f.store.Files(t.Context(), rb.ID)
	if err != nil || len(files) != 3 {
		t.Fatalf("files in the bucket: %v, %v", files, err)
	}
}
