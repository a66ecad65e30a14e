package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 31, 30, 0, time.UTC)

func newRollback(id, system string, started time.Time) *rewind.Rollback {
	rb := &rewind.Rollback{
		ID: id, System: system, Reason: "error-rate", Requester: "rewind",
		State: rewind.RollbackRunning, Started: started,
		Decision: &rewind.Decision{System: system, At: started, Firing: []string{"error-rate"}},
	}
	for _, n := range rewind.PlanSteps {
		rb.Steps = append(rb.Steps, rewind.StepRecord{Name: n, State: rewind.StepPending})
	}
	return rb
}

func TestJournalIsAppendOnly(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	if err := s.Create(ctx, newRollback("rb-1", "checkout", t0)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE journal SET state = 'done'`, `DELETE FROM journal`} {
		if _, err := s.w.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: no error", q)
		}
	}
	if j, err := s.Journal(ctx, "rb-1"); err != nil || len(j) != 1 {
		t.Errorf("journal after the attempts: %v, %v", j, err)
	}
}

func TestReopenAndSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewind.db")
	ctx := t.Context()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := s.Create(ctx, newRollback("rb-1", "checkout", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path) // migrations are not applied twice
	if _, err := s.Get(ctx, "rb-1"); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path); err == nil {
		t.Fatal("Open accepted a schema newer than it knows")
	}
}

func TestOpenNeedsAFile(t *testing.T) {
	for _, p := range []string{"", ":memory:"} {
		if _, err := Open(context.Background(), p); err == nil {
			t.Errorf("Open(%q): no error", p)
		}
	}
}

func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir%20with ?#")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "re?wind#1.db")
	s := open(t, path)
	if err := s.Create(t.Context(), newRollback("rb-1", "checkout", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not where it was asked to be: %v", err)
	}
}
