package sqlite

import (
	"database/sql"
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
