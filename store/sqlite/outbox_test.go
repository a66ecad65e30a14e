package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	rewind "github.com/rewind-sre/rewind"
	"github.com/rewind-sre/rewind/notify"
)

func notice(notifier string, kind rewind.EventKind, id string, at time.Time) notify.Notice {
	e := rewind.Event{Kind: kind, System: "checkout", RollbackID: id, Severity: rewind.SeverityCritical, At: at}
	return notify.Notice{Notifier: notifier, Key: notifier + "|" + e.Key(), Event: e, State: notify.Pending, Created: at, NextAttempt: at}
}

func TestOutboxEnqueueDedupHeads(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rewind.db"))
	ctx := t.Context()
	batch := []notify.Notice{
		notice("chat", rewind.EventRollbackDecided, "rb-1", t0),
		notice("pager", rewind.EventRollbackDecided, "rb-1", t0),
		notice("chat", rewind.EventRollbackCompleted, "rb-1", t0.Add(time.Minute)),
	}
	added, err := s.Enqueue(ctx, batch)
	if err != nil || added != 3 {
		t.Fatalf("Enqueue: %d, %v", added, err)
	}
	if batch[0].ID == 0 || batch[0].ID >= batch[1].ID || batch[1].ID >= batch[2].ID {
		t.Errorf("ids not assigned in order: %d %d %d", batch[0].ID, batch[1].ID, batch[2].ID)
	}
	// The same event for the same notifier again: nothing added.
	again := []notify.Notice{notice("chat", rewind.EventRollbackDecided, "rb-1", t0.Add(time.Hour))}
	if added, err := s.Enqueue(ctx, again); err != nil || added != 0 || again[0].ID != 0 {
		t.Fatalf("Enqueue of a duplicate: %d, %v, id %d", added, err, again[0].ID)
	}
	heads, err := s.Heads(ctx)
	if err != nil || len(heads) != 2 || heads[0].Key != batch[0].Key || heads[1].Key != batch[1].Key {
		t.Fatalf("Heads: %+v, %v", heads, err)
	}
	if !heads[0].Created.Equal(t0) || heads[0].Event.RollbackID != "rb-1" || heads[0].State != notify.Pending {
		t.Errorf("head read back: %+v", heads[0])
	}

	// A retry keeps it the head; delivery moves the head on.
	next := t0.Add(4 * time.Second)
	if err := s.Record(ctx, heads[0].ID, notify.Outcome{At: t0.Add(time.Second), State: notify.Pending, NextAttempt: next, Error: "503"}); err != nil {
		t.Fatal(err)
	}
	heads, _ = s.Heads(ctx)
	if heads[0].Attempts != 1 || !heads[0].NextAttempt.Equal(next) || heads[0].LastError != "503" || !heads[0].Done.IsZero() {
		t.Errorf("after a retry: %+v", heads[0])
	}
	if err := s.Record(ctx, heads[0].ID, notify.Outcome{At: next, State: notify.Delivered}); err != nil {
		t.Fatal(err)
	}
	heads, _ = s.Heads(ctx)
	if len(heads) != 2 || heads[0].Key != batch[1].Key || heads[1].Key != batch[2].Key {
		t.Errorf("after delivery, heads: %+v", heads)
	}
	delivered, err := s.Notices(ctx, notify.Filter{State: notify.Delivered})
	if err != nil || len(delivered) != 1 || delivered[0].Attempts != 2 || !delivered[0].Done.Equal(next) {
		t.Errorf("delivered: %+v, %v", delivered, err)
	}
	chat, _ := s.Notices(ctx, notify.Filter{Notifier: "chat", Limit: 1})
	if len(chat) != 1 || chat[0].ID != batch[0].ID {
		t.Errorf("Notices(chat, limit 1): %+v", chat)
	}
	if _, err := s.Enqueue(ctx, []notify.Notice{notice("chat", rewind.EventRollbackDecided, "rb-2", t0)}); err != nil {
		t.Fatal(err)
	}
	rb1, err := s.Notices(ctx, notify.Filter{RollbackID: "rb-1"})
	if err != nil || len(rb1) != 3 {
		t.Errorf("Notices(rollback rb-1): %d notices, %v; want 3", len(rb1), err)
	}
	for _, n := range rb1 {
		if n.Event.RollbackID != "rb-1" {
			t.Errorf("Notices(rollback rb-1) returned a notice of %s", n.Event.RollbackID)
		}
	}
	if err := s.Record(ctx, 999, notify.Outcome{State: notify.Failed}); !errors.Is(err, ErrNoNotice) {
		t.Errorf("Record of an unknown notice: %v", err)
	}
	if _, err := s.Enqueue(ctx, []notify.Notice{{Key: "k"}}); err == nil {
		t.Error("a notice without a notifier was enqueued")
	}
}

// A store made by the previous schema (version 1) gains the outbox and
// keeps its rollbacks.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewind.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0] + `; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO rollbacks (id, system, state, started, record) VALUES ('rb-old', 'checkout', 'succeeded', '2026-01-01T00:00:00.000000000Z', '{"id":"rb-old","system":"checkout","state":"succeeded"}')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, path)
	var v int
	if err := s.r.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version %d (%v), want %d", v, err, len(migrations))
	}
	if rb, err := s.Get(t.Context(), "rb-old"); err != nil || rb.System != "checkout" {
		t.Errorf("the old rollback: %+v, %v", rb, err)
	}
	if _, err := s.Enqueue(t.Context(), []notify.Notice{notice("chat", rewind.EventRollbackDecided, "rb-old", t0)}); err != nil {
		t.Errorf("Enqueue after the migration: %v", err)
	}
}
