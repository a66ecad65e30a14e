// Package storetest is the contract every rewind.Store passes (store/sqlite,
// store/kubernetes): what the plan runner and the notification outbox rely
// on to journal, resume and deliver, also across processes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// Factory makes a fresh, empty store for one case: s is a handle on it, and
// another opens a second handle on the same store, standing for a second
// process (another replica). Handles are closed by the factory's cleanup.
type Factory func(t *testing.T) (s rewind.Store, another func() rewind.Store)

// T0 is the start of every case's timeline.
var T0 = time.Date(2026, 1, 1, 0, 31, 30, 0, time.UTC)

// Run runs every case of the contract, each on a fresh store.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"RoundTrip", testRoundTrip},
		{"CreateRefusesSecondRunningRollback", testCreateRefuses},
		{"ConcurrentCreateAcrossHandles", testConcurrentCreate},
		{"ListAndUnfinished", testListAndUnfinished},
		{"UnknownRollback", testUnknown},
		{"CreateValidates", testCreateValidates},
		{"JournalMovedByAnotherHandle", testJournalMoved},
		{"LargeRecordIsStored", testLargeRecord},
		{"OutboxEnqueueDedupHeads", testOutbox},
		{"OutboxOrderAndDedupAcrossHandles", testOutboxAcrossHandles},
		{"OutboxClaims", testClaims},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore) })
	}
}

// NewRollback is a running rollback of system with its plan's steps pending.
func NewRollback(id, system string, started time.Time) *rewind.Rollback {
	rb := &rewind.Rollback{
		ID: id, System: system, Reason: "error-rate", Requester: "rewind",
		State: rewind.RollbackRunning, Started: started,
		Decision: &rewind.Decision{System: system, At: started, Firing: []string{"error-rate"}, PolicyHash: "sha256:abc",
			Triggers: []rewind.TriggerEvidence{{Trigger: "error-rate", Severity: "critical", Action: rewind.ActionRollback, State: rewind.StateFiring,
				Observation: rewind.Observation{Trigger: "error-rate", At: started, Outcome: rewind.OutcomeTrue, Canary: rewind.Float(0.05), Baseline: rewind.Float(0.001),
					Readings: []rewind.Reading{{Side: "canary", Query: `sum(rate(errors[1m]))`, At: started, Value: rewind.Float(0.05), Series: 1}}}}}},
	}
	for _, n := range rewind.PlanSteps {
		rb.Steps = append(rb.Steps, rewind.StepRecord{Name: n, State: rewind.StepPending})
	}
	return rb
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testRoundTrip(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	rb := NewRollback("rb-1", "checkout", T0)
	if err := s.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	d := rb.Step(rewind.StepDrain)
	d.State, d.Attempts, d.Started = rewind.StepRunning, 1, T0.Add(time.Second)
	if err := s.Save(ctx, rb, rewind.JournalEntry{Step: d.Name, State: string(d.State), Attempt: 1, At: d.Started}); err != nil {
		t.Fatal(err)
	}
	d.State, d.Ended, d.Facts, d.Detail = rewind.StepDone, T0.Add(3*time.Second), map[string]string{"drainTime": "2s"}, "100% to baseline"
	done := rewind.JournalEntry{Step: d.Name, State: string(d.State), Attempt: 1, At: d.Ended, Detail: d.Detail, Facts: d.Facts, Duration: d.Duration()}
	if err := s.Save(ctx, rb, done); err != nil {
		t.Fatal(err)
	}
	rb.Evidence = "s3://evidence/rewind/rb-1/"

	got, err := s.Get(ctx, "rb-1")
	if err != nil {
		t.Fatal(err)
	}
	rb.Evidence = "" // not saved yet
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
	if j[0].Step != "" || j[0].State != "running" || j[0].Detail != "created by rewind: error-rate" || !j[0].At.Equal(T0) {
		t.Errorf("first entry %+v", j[0])
	}
	done.RollbackID, done.Seq = "rb-1", 3
	if !reflect.DeepEqual(j[2], done) {
		t.Errorf("last entry:\n got %+v\nwant %+v", j[2], done)
	}

	// The end of the rollback, with its evidence location, as the runner
	// writes it.
	rb.State, rb.Ended, rb.Evidence = rewind.RollbackSucceeded, T0.Add(time.Minute), "s3://evidence/rewind/rb-1/"
	if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(rb.State), At: rb.Ended, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "rb-1"); err != nil || !reflect.DeepEqual(got, rb) {
		t.Errorf("Get after the end: %v\n got %+v\nwant %+v", err, got, rb)
	}
	// A zero At is filled in by the store.
	if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(rb.State), Detail: "post-mortem written"}); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Journal(ctx, "rb-1"); err != nil || len(j) != 5 || j[4].At.IsZero() {
		t.Errorf("journal after a Save with a zero At: %+v, %v", j, err)
	}
}

func testCreateRefuses(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	first := NewRollback("rb-1", "checkout", T0)
	if err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, NewRollback("rb-other", "payments", T0)); err != nil {
		t.Fatalf("another system: %v", err)
	}
	err := s.Create(ctx, NewRollback("rb-2", "checkout", T0.Add(time.Second)))
	var ipe *rewind.InProgressError
	if !errors.Is(err, rewind.ErrRollbackInProgress) || !errors.As(err, &ipe) || ipe.Holder != "rb-1" || ipe.System != "checkout" {
		t.Fatalf("second Create: %v, want an InProgressError naming rb-1", err)
	}
	if _, err := s.Get(ctx, "rb-2"); !errors.Is(err, rewind.ErrRollbackNotFound) {
		t.Fatalf("the refused rollback was recorded: %v", err)
	}
	if err := s.Create(ctx, NewRollback("rb-1", "search", T0)); err == nil {
		t.Error("a second rollback with an id already stored was created")
	}

	first.State, first.Ended = rewind.RollbackSucceeded, T0.Add(time.Minute)
	if err := s.Save(ctx, first, rewind.JournalEntry{State: string(first.State)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, NewRollback("rb-3", "checkout", T0.Add(2*time.Minute))); err != nil {
		t.Fatalf("Create after the first finished: %v", err)
	}
}

// Two handles stand for two processes: exactly one Create of a system
// wins, whatever the interleaving.
func testConcurrentCreate(t *testing.T, newStore Factory) {
	s, another := newStore(t)
	stores := []rewind.Store{s, another()}
	ctx := ctxOf(t)
	const n = 8
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
			err := stores[i%2].Create(ctx, NewRollback(id, "checkout", T0))
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
	running, err := stores[1].Unfinished(ctx)
	if err != nil || len(running) != 1 || running[0].ID != won[0] {
		t.Fatalf("Unfinished = %v, %v; want only %s", ids(running), err, won[0])
	}
	all, err := stores[0].List(ctx, rewind.ListOptions{})
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %v, %v; the losers left records", ids(all), err)
	}
}

func ids(rbs []*rewind.Rollback) (out []string) {
	for _, rb := range rbs {
		out = append(out, rb.ID)
	}
	return out
}

func testListAndUnfinished(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	for i, c := range []struct {
		id, system string
		state      rewind.RollbackState
	}{
		{"rb-a", "checkout", rewind.RollbackSucceeded},
		{"rb-b", "payments", rewind.RollbackRunning},
		{"rb-c", "checkout", rewind.RollbackFailed},
		{"rb-d", "checkout", rewind.RollbackRunning},
	} {
		rb := NewRollback(c.id, c.system, T0.Add(time.Duration(i)*time.Minute))
		if err := s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
		if c.state != rewind.RollbackRunning {
			rb.State, rb.Ended = c.state, rb.Started.Add(30*time.Second)
			if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(c.state)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		opts rewind.ListOptions
		want []string
	}{
		{"all newest first", rewind.ListOptions{}, []string{"rb-d", "rb-c", "rb-b", "rb-a"}},
		{"system", rewind.ListOptions{System: "checkout"}, []string{"rb-d", "rb-c", "rb-a"}},
		{"state", rewind.ListOptions{State: rewind.RollbackRunning}, []string{"rb-d", "rb-b"}},
		{"limit", rewind.ListOptions{System: "checkout", Limit: 2}, []string{"rb-d", "rb-c"}},
		{"none", rewind.ListOptions{System: "search"}, nil},
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

func testUnknown(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	if _, err := s.Get(ctx, "rb-x"); !errors.Is(err, rewind.ErrRollbackNotFound) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.Journal(ctx, "rb-x"); !errors.Is(err, rewind.ErrRollbackNotFound) {
		t.Errorf("Journal: %v", err)
	}
	if err := s.Save(ctx, NewRollback("rb-x", "checkout", T0), rewind.JournalEntry{}); !errors.Is(err, rewind.ErrRollbackNotFound) {
		t.Errorf("Save: %v", err)
	}
}

func testCreateValidates(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	done := NewRollback("rb-1", "checkout", T0)
	done.State = rewind.RollbackSucceeded
	for name, rb := range map[string]*rewind.Rollback{
		"no id":         NewRollback("", "checkout", T0),
		"no system":     NewRollback("rb-1", "", T0),
		"not running":   done,
		"id with space": NewRollback("rb 1", "checkout", T0),
	} {
		if err := s.Create(ctx, rb); err == nil {
			t.Errorf("%s: created", name)
		}
	}
	// System names are the policy's: whatever they are, they round-trip.
	odd := NewRollback("rb-2", "Checkout_EU.west/1", T0)
	if err := s.Create(ctx, odd); err != nil {
		t.Fatalf("a system name with capitals, _, . and /: %v", err)
	}
	if got, err := s.List(ctx, rewind.ListOptions{System: "Checkout_EU.west/1"}); err != nil || len(got) != 1 || got[0].System != odd.System {
		t.Errorf("List by that system: %v, %v", ids(got), err)
	}
	if got, err := s.List(ctx, rewind.ListOptions{System: "checkout_eu.west/1"}); err != nil || len(got) != 0 {
		t.Errorf("List by a system differing in case: %v, %v", ids(got), err)
	}
}

// A handle whose view of a rollback's journal is stale (a deposed leader:
// another process resumed the rollback and wrote since) cannot write to it.
func testJournalMoved(t *testing.T, newStore Factory) {
	s, another := newStore(t)
	ctx := ctxOf(t)
	rb := NewRollback("rb-1", "checkout", T0)
	if err := s.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepRunning), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	// The new leader resumes it.
	s2 := another()
	unfinished, err := s2.Unfinished(ctx)
	if err != nil || len(unfinished) != 1 {
		t.Fatalf("Unfinished on the second handle: %v, %v", ids(unfinished), err)
	}
	theirs := unfinished[0]
	if err := s2.Save(ctx, theirs, rewind.JournalEntry{State: string(rewind.RollbackRunning), Detail: "resumed"}); err != nil {
		t.Fatalf("the new leader's Save: %v", err)
	}
	// The old leader's next write is refused, and changes nothing.
	rb.Step(rewind.StepDrain).State = rewind.StepDone
	err = s.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepDone), Attempt: 1})
	if !errors.Is(err, rewind.ErrJournalMoved) {
		t.Fatalf("the old leader's Save: %v, want ErrJournalMoved", err)
	}
	j, err := s2.Journal(ctx, "rb-1")
	if err != nil || len(j) != 3 || j[2].Detail != "resumed" {
		t.Fatalf("journal: %+v, %v", j, err)
	}
	if got, _ := s2.Get(ctx, "rb-1"); got.Step(rewind.StepDrain).State != rewind.StepPending {
		t.Errorf("the refused Save changed the record: drain %s", got.Step(rewind.StepDrain).State)
	}
	// The new leader goes on.
	theirs.Step(rewind.StepDrain).State = rewind.StepDone
	if err := s2.Save(ctx, theirs, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepDone), Attempt: 2}); err != nil {
		t.Fatalf("the new leader's next Save: %v", err)
	}
	// Reading the record (history, API) does not hand it over.
	if _, err := s.Get(ctx, "rb-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, rewind.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, rb, rewind.JournalEntry{Step: rewind.StepDrain, State: string(rewind.StepDone), Attempt: 1}); !errors.Is(err, rewind.ErrJournalMoved) {
		t.Fatalf("the old leader's Save after a Get: %v, want ErrJournalMoved", err)
	}
	// Unfinished hands it over.
	if _, err := s.Unfinished(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, rb, rewind.JournalEntry{State: string(rewind.RollbackRunning), Detail: "resumed again"}); err != nil {
		t.Fatalf("Save after Unfinished: %v", err)
	}
}

// A rollback with a very large decision and long step details is stored
// (a store may bound what it keeps of them, never refuse the write): the
// runner must be able to journal every step.
func testLargeRecord(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	rb := NewRollback("rb-big", "checkout", T0)
	tr := &rb.Decision.Triggers[0]
	for i := range 5000 {
		tr.History = append(tr.History, rewind.Transition{At: T0.Add(time.Duration(i) * time.Second), Trigger: "error-rate",
			From: rewind.StateOK, To: rewind.StatePending, Canary: rewind.Float(float64(i)), Reason: strings.Repeat("r", 100)})
	}
	if err := s.Create(ctx, rb); err != nil {
		t.Fatalf("Create of a rollback with a %d-transition history: %v", len(tr.History), err)
	}
	for i := range 200 {
		rec := rb.Step(rewind.StepVerify)
		rec.State, rec.Attempts, rec.Detail = rewind.StepRunning, i+1, strings.Repeat("d", 20_000)
		if err := s.Save(ctx, rb, rewind.JournalEntry{Step: rec.Name, State: string(rec.State), Attempt: i + 1, Detail: rec.Detail}); err != nil {
			t.Fatalf("Save %d of a large record: %v", i, err)
		}
	}
	got, err := s.Get(ctx, "rb-big")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rb.ID || got.System != rb.System || got.State != rewind.RollbackRunning || got.Step(rewind.StepVerify).Attempts != 200 ||
		got.Decision == nil || len(got.Decision.Triggers) != 1 || got.Decision.Firing[0] != "error-rate" {
		t.Errorf("the large record read back lost its essentials: id %s state %s verify attempts %d", got.ID, got.State, got.Step(rewind.StepVerify).Attempts)
	}
	j, err := s.Journal(ctx, "rb-big")
	if err != nil {
		t.Fatal(err)
	}
	if len(j) == 0 || j[len(j)-1].Attempt != 200 || j[len(j)-1].Seq != 201 {
		t.Errorf("journal of the large record ends with %+v", j[len(j)-1])
	}
}

// Notice is a pending notice of event kind about rollback id for notifier.
func Notice(notifier string, kind rewind.EventKind, id string, at time.Time) rewind.Notice {
	e := rewind.Event{Kind: kind, System: "checkout", RollbackID: id, Severity: rewind.SeverityCritical, Reason: "error-rate", At: at}
	return rewind.Notice{Notifier: notifier, Key: notifier + "|" + e.Key(), Event: e, State: rewind.NoticePending, Created: at, NextAttempt: at}
}

func testOutbox(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := ctxOf(t)
	batch := []rewind.Notice{
		Notice("chat", rewind.EventRollbackDecided, "rb-1", T0),
		Notice("pager", rewind.EventRollbackDecided, "rb-1", T0),
		Notice("chat", rewind.EventRollbackCompleted, "rb-1", T0.Add(time.Minute)),
	}
	added, err := s.Enqueue(ctx, batch)
	if err != nil || added != 3 {
		t.Fatalf("Enqueue: %d, %v", added, err)
	}
	if batch[0].ID == 0 || batch[0].ID >= batch[1].ID || batch[1].ID >= batch[2].ID {
		t.Errorf("ids not assigned in order: %d %d %d", batch[0].ID, batch[1].ID, batch[2].ID)
	}
	again := []rewind.Notice{Notice("chat", rewind.EventRollbackDecided, "rb-1", T0.Add(time.Hour))}
	if added, err := s.Enqueue(ctx, again); err != nil || added != 0 || again[0].ID != 0 {
		t.Fatalf("Enqueue of a duplicate: %d, %v, id %d", added, err, again[0].ID)
	}
	heads, err := s.Heads(ctx)
	if err != nil || len(heads) != 2 || heads[0].Key != batch[0].Key || heads[1].Key != batch[1].Key {
		t.Fatalf("Heads: %+v, %v", heads, err)
	}
	if !heads[0].Created.Equal(T0) || heads[0].Event.RollbackID != "rb-1" || heads[0].State != rewind.NoticePending ||
		heads[0].Event.Reason != "error-rate" || !heads[0].Event.At.Equal(T0) {
		t.Errorf("head read back: %+v", heads[0])
	}

	// A retry keeps it the head; delivery moves the head on.
	next := T0.Add(4 * time.Second)
	if err := s.Record(ctx, heads[0].ID, rewind.NoticeOutcome{At: T0.Add(time.Second), State: rewind.NoticePending, NextAttempt: next, Error: "503"}); err != nil {
		t.Fatal(err)
	}
	heads, _ = s.Heads(ctx)
	if heads[0].Attempts != 1 || !heads[0].NextAttempt.Equal(next) || heads[0].LastError != "503" || !heads[0].Done.IsZero() {
		t.Errorf("after a retry: %+v", heads[0])
	}
	if err := s.Record(ctx, heads[0].ID, rewind.NoticeOutcome{At: next, State: rewind.NoticeDelivered}); err != nil {
		t.Fatal(err)
	}
	heads, _ = s.Heads(ctx)
	if len(heads) != 2 || heads[0].Key != batch[1].Key || heads[1].Key != batch[2].Key {
		t.Errorf("after delivery, heads: %+v", heads)
	}
	delivered, err := s.Notices(ctx, rewind.NoticeFilter{State: rewind.NoticeDelivered})
	if err != nil || len(delivered) != 1 || delivered[0].Attempts != 2 || !delivered[0].Done.Equal(next) {
		t.Errorf("delivered: %+v, %v", delivered, err)
	}
	chat, _ := s.Notices(ctx, rewind.NoticeFilter{Notifier: "chat", Limit: 1})
	if len(chat) != 1 || chat[0].ID != batch[0].ID {
		t.Errorf("Notices(chat, limit 1): %+v", chat)
	}
	if all, _ := s.Notices(ctx, rewind.NoticeFilter{}); len(all) != 3 {
		t.Errorf("Notices(): %d, want 3", len(all))
	}
	if _, err := s.Enqueue(ctx, []rewind.Notice{Notice("chat", rewind.EventRollbackDecided, "rb-2", T0)}); err != nil {
		t.Fatal(err)
	}
	rb1, err := s.Notices(ctx, rewind.NoticeFilter{RollbackID: "rb-1"})
	if err != nil || len(rb1) != 3 {
		t.Errorf("Notices(rollback rb-1): %d notices, %v; want 3", len(rb1), err)
	}
	for _, n := range rb1 {
		if n.Event.RollbackID != "rb-1" {
			t.Errorf("Notices(rollback rb-1) returned a notice of %s", n.Event.RollbackID)
		}
	}
	if err := s.Record(ctx, 999, rewind.NoticeOutcome{State: rewind.NoticeFailed}); !errors.Is(err, rewind.ErrNoticeNotFound) {
		t.Errorf("Record of an unknown notice: %v", err)
	}
	if _, err := s.Enqueue(ctx, []rewind.Notice{{Key: "k"}}); err == nil {
		t.Error("a notice without a notifier was enqueued")
	}
	// Events without a rollback (a blind analyzer) have a home too.
	blind := rewind.Event{Kind: rewind.EventAnalyzerBlind, System: "checkout", Severity: rewind.SeverityWarning, At: T0}
	n := rewind.Notice{Notifier: "chat", Key: "chat|" + blind.Key(), Event: blind, State: rewind.NoticePending, Created: T0, NextAttempt: T0}
	if added, err := s.Enqueue(ctx, []rewind.Notice{n}); err != nil || added != 1 {
		t.Fatalf("Enqueue of a system event: %d, %v", added, err)
	}
	if got, _ := s.Notices(ctx, rewind.NoticeFilter{Notifier: "chat", State: rewind.NoticePending}); len(got) != 3 || got[2].Event.Kind != rewind.EventAnalyzerBlind {
		t.Errorf("pending chat notices: %+v", got)
	}
}

// Notices enqueued through two handles (two leaders, one after the other)
// keep their order and their dedup.
func testOutboxAcrossHandles(t *testing.T, newStore Factory) {
	s, another := newStore(t)
	s2 := another()
	ctx := ctxOf(t)
	first := []rewind.Notice{Notice("chat", rewind.EventRollbackDecided, "rb-1", T0)}
	if _, err := s.Enqueue(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := []rewind.Notice{
		Notice("chat", rewind.EventRollbackDecided, "rb-1", T0.Add(time.Minute)), // the same event again
		Notice("chat", rewind.EventRollbackCompleted, "rb-1", T0.Add(time.Minute)),
	}
	added, err := s2.Enqueue(ctx, second)
	if err != nil || added != 1 || second[0].ID != 0 || second[1].ID <= first[0].ID {
		t.Fatalf("Enqueue on the second handle: added %d (%v), ids %d %d after %d", added, err, second[0].ID, second[1].ID, first[0].ID)
	}
	all, err := s.Notices(ctx, rewind.NoticeFilter{})
	if err != nil || len(all) != 2 || all[0].Event.Kind != rewind.EventRollbackDecided || all[1].Event.Kind != rewind.EventRollbackCompleted {
		t.Fatalf("Notices: %+v, %v", all, err)
	}
}

// A claim keeps a second process from attempting a notice until it is
// recorded or the claim expires; the first process cannot record over a
// claim taken after its own expired.
func testClaims(t *testing.T, newStore Factory) {
	s, another := newStore(t)
	s2 := another()
	ctx := ctxOf(t)
	ns := []rewind.Notice{Notice("chat", rewind.EventRollbackDecided, "rb-1", T0), Notice("chat", rewind.EventRollbackCompleted, "rb-1", T0)}
	if _, err := s.Enqueue(ctx, ns); err != nil {
		t.Fatal(err)
	}
	id := ns[0].ID
	now, until := T0.Add(time.Second), T0.Add(time.Minute)
	if err := s.Claim(ctx, id, "leader-a", now, until); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	heads, err := s2.Heads(ctx)
	if err != nil || len(heads) != 1 || heads[0].ID != id || heads[0].ClaimedBy != "leader-a" || !heads[0].ClaimedUntil.Equal(until) {
		t.Fatalf("Heads on the second handle: %+v, %v", heads, err)
	}
	if !heads[0].Claimed("leader-b", now) || heads[0].Claimed("leader-a", now) || heads[0].Claimed("leader-b", until) {
		t.Errorf("Notice.Claimed is wrong for %+v", heads[0])
	}
	if err := s2.Claim(ctx, id, "leader-b", now.Add(time.Second), until.Add(time.Second)); !errors.Is(err, rewind.ErrNoticeClaimed) {
		t.Fatalf("a second owner's Claim during the first's: %v, want ErrNoticeClaimed", err)
	}
	if err := s.Claim(ctx, id, "leader-a", now.Add(time.Second), until.Add(time.Second)); err != nil {
		t.Fatalf("the owner extending its claim: %v", err)
	}
	// Recorded by its owner: settled, claim cleared; no one can claim it.
	if err := s.Record(ctx, id, rewind.NoticeOutcome{At: now.Add(2 * time.Second), State: rewind.NoticeDelivered, Owner: "leader-a"}); err != nil {
		t.Fatalf("Record by the owner: %v", err)
	}
	if err := s2.Claim(ctx, id, "leader-b", until.Add(time.Hour), until.Add(2*time.Hour)); !errors.Is(err, rewind.ErrNoticeClaimed) {
		t.Errorf("Claim of a delivered notice: %v, want ErrNoticeClaimed", err)
	}
	if got, _ := s2.Notices(ctx, rewind.NoticeFilter{State: rewind.NoticeDelivered}); len(got) != 1 || got[0].ClaimedBy != "" || got[0].Attempts != 1 {
		t.Errorf("the delivered notice: %+v", got)
	}

	// The second notice: leader-a claims it and dies; after the claim
	// expires leader-b takes it; leader-a's late Record is refused.
	id = ns[1].ID
	if err := s.Claim(ctx, id, "leader-a", now, until); err != nil {
		t.Fatal(err)
	}
	if err := s2.Claim(ctx, id, "leader-b", until, until.Add(time.Minute)); err != nil {
		t.Fatalf("Claim after the first claim expired: %v", err)
	}
	if err := s.Record(ctx, id, rewind.NoticeOutcome{At: until, State: rewind.NoticeDelivered, Owner: "leader-a"}); !errors.Is(err, rewind.ErrNoticeClaimed) {
		t.Fatalf("Record by the owner of an expired, taken-over claim: %v, want ErrNoticeClaimed", err)
	}
	if err := s2.Record(ctx, id, rewind.NoticeOutcome{At: until, State: rewind.NoticePending, NextAttempt: until.Add(2 * time.Second), Error: "503", Owner: "leader-b"}); err != nil {
		t.Fatalf("Record by the new owner: %v", err)
	}
	heads, _ = s.Heads(ctx)
	if len(heads) != 1 || heads[0].ID != id || heads[0].ClaimedBy != "" || heads[0].Attempts != 1 || heads[0].LastError != "503" {
		t.Errorf("after leader-b's retry: %+v", heads)
	}
	if err := s.Claim(ctx, 999, "leader-a", now, until); !errors.Is(err, rewind.ErrNoticeNotFound) {
		t.Errorf("Claim of an unknown notice: %v", err)
	}
}
