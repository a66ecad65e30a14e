package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/plan"
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

func TestRoundTrip(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	rb := newRollback("rb-1", "checkout", t0)
	if err := s.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	d := rb.Step(rewind.StepDrain)
	d.State, d.Attempts, d.Started = rewind.StepRunning, 1, t0.Add(time.Second)
	if err := s.Save(ctx, rb, plan.JournalEntry{Step: d.Name, State: string(d.State), Attempt: 1, At: d.Started}); err != nil {
		t.Fatal(err)
	}
	d.State, d.Ended, d.Facts = rewind.StepDone, t0.Add(3*time.Second), map[string]string{"drainTime": "2s"}
	done := plan.JournalEntry{Step: d.Name, State: string(d.State), Attempt: 1, At: d.Ended, Detail: "100% to baseline", Facts: d.Facts, Duration: d.Duration()}
	if err := s.Save(ctx, rb, done); err != nil {
		t.Fatal(err)
	}

	got, err := s.Get(ctx, "rb-1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rb) {
		t.Errorf("Get:\n got %+v\nwant %+v", got, rb)
	}
	j, err := s.Journal(ctx, "rb-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(j) != 3 {
		t.Fatalf("journal has %d entries, want 3: %+v", len(j), j)
	}
	for i, e := range j {
		if e.Seq != int64(i+1) || e.RollbackID != "rb-1" {
			t.Errorf("entry %d: seq %d id %q", i, e.Seq, e.RollbackID)
		}
	}
	if j[0].Step != "" || j[0].State != "running" || j[0].Detail != "created by rewind: error-rate" {
		t.Errorf("first entry %+v", j[0])
	}
	done.RollbackID, done.Seq = "rb-1", 3
	if !reflect.DeepEqual(j[2], done) {
		t.Errorf("last entry:\n got %+v\nwant %+v", j[2], done)
	}
}

func TestCreateRefusesSecondRunningRollback(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	first := newRollback("rb-1", "checkout", t0)
	if err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, newRollback("rb-other", "payments", t0)); err != nil {
		t.Fatalf("another system: %v", err)
	}
	err := s.Create(ctx, newRollback("rb-2", "checkout", t0.Add(time.Second)))
	var ipe *plan.InProgressError
	if !errors.Is(err, rewind.ErrRollbackInProgress) || !errors.As(err, &ipe) || ipe.Holder != "rb-1" {
		t.Fatalf("second Create: %v, want an InProgressError naming rb-1", err)
	}
	if _, err := s.Get(ctx, "rb-2"); !errors.Is(err, plan.ErrNotFound) {
		t.Fatalf("the refused rollback was recorded: %v", err)
	}

	first.State, first.Ended = rewind.RollbackSucceeded, t0.Add(time.Minute)
	if err := s.Save(ctx, first, plan.JournalEntry{State: string(first.State)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, newRollback("rb-3", "checkout", t0.Add(2*time.Minute))); err != nil {
		t.Fatalf("Create after the first finished: %v", err)
	}
}

// Two handles on one file stand for two processes: exactly one Create of
// a system wins, whatever the interleaving.
func TestConcurrentCreateAcrossHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewind.db")
	stores := []*Store{open(t, path), open(t, path)}
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
		go_  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-go_
			id := fmt.Sprintf("rb-%02d", i)
			err := stores[i%2].Create(t.Context(), newRollback(id, "checkout", t0))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, id)
			case !errors.Is(err, rewind.ErrRollbackInProgress):
				errs = append(errs, err)
			}
		})
	}
	close(go_)
	wg.Wait()
	if len(errs) > 0 || len(won) != 1 {
		t.Fatalf("winners %v, unexpected errors %v", won, errs)
	}
	running, err := stores[1].Unfinished(t.Context())
	if err != nil || len(running) != 1 || running[0].ID != won[0] {
		t.Fatalf("Unfinished = %v, %v; want only %s", running, err, won[0])
	}
}

func TestListAndUnfinished(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	for i, c := range []struct {
		id, system string
		state      rewind.RollbackState
	}{
		{"rb-a", "checkout", rewind.RollbackSucceeded},
		{"rb-b", "payments", rewind.RollbackRunning},
		{"rb-c", "checkout", rewind.RollbackFailed},
		{"rb-d", "checkout", rewind.RollbackRunning},
	} {
		rb := newRollback(c.id, c.system, t0.Add(time.Duration(i)*time.Minute))
		if err := s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		if c.state != rewind.RollbackRunning {
			rb.State, rb.Ended = c.state, rb.Started.Add(30*time.Second)
			if err := s.Save(ctx, rb, plan.JournalEntry{State: string(c.state)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids := func(rbs []*rewind.Rollback) (out []string) {
		for _, rb := range rbs {
			out = append(out, rb.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		opts plan.ListOptions
		want []string
	}{
		{"all newest first", plan.ListOptions{}, []string{"rb-d", "rb-c", "rb-b", "rb-a"}},
		{"system", plan.ListOptions{System: "checkout"}, []string{"rb-d", "rb-c", "rb-a"}},
		{"state", plan.ListOptions{State: rewind.RollbackRunning}, []string{"rb-d", "rb-b"}},
		{"limit", plan.ListOptions{System: "checkout", Limit: 2}, []string{"rb-d", "rb-c"}},
		{"none", plan.ListOptions{System: "search"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.List(ctx, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), c.want) {
				t.Errorf("List(%+v) = %v, want %v", c.opts, ids(got), c.want)
			}
		})
	}
	got, err := s.Unfinished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"rb-b", "rb-d"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("Unfinished = %v, want %v (oldest first)", ids(got), want)
	}
}

func TestUnknownRollback(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	if _, err := s.Get(ctx, "rb-x"); !errors.Is(err, plan.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.Journal(ctx, "rb-x"); !errors.Is(err, plan.ErrNotFound) {
		t.Errorf("Journal: %v", err)
	}
	if err := s.Save(ctx, newRollback("rb-x", "checkout", t0), plan.JournalEntry{}); !errors.Is(err, plan.ErrNotFound) {
		t.Errorf("Save: %v", err)
	}
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
