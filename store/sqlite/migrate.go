package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from version i to i+1 (PRAGMA user_version).
// Append only: a released migration is never edited.
var migrations = []string{
	// 1: rollbacks and their journal.
	`CREATE TABLE rollbacks (
		id      TEXT PRIMARY KEY,
		system  TEXT NOT NULL,
		state   TEXT NOT NULL,
		started TEXT NOT NULL, -- UTC, fixed-width RFC 3339: sorts as text
		ended   TEXT,
		record  TEXT NOT NULL  -- the rewind.Rollback as JSON
	) STRICT;
	-- The local half of exactly-once: one running rollback per system.
	CREATE UNIQUE INDEX rollbacks_one_running ON rollbacks(system) WHERE state = 'running';
	CREATE INDEX rollbacks_by_started ON rollbacks(started, id);
	CREATE TABLE journal (
		rollback_id TEXT NOT NULL REFERENCES rollbacks(id),
		seq         INTEGER NOT NULL,
		at          TEXT NOT NULL,
		step        TEXT NOT NULL, -- '' for the whole rollback
		state       TEXT NOT NULL,
		attempt     INTEGER NOT NULL,
		detail      TEXT NOT NULL,
		error       TEXT NOT NULL,
		facts       TEXT,          -- JSON object, or NULL
		duration_ns INTEGER NOT NULL,
		PRIMARY KEY (rollback_id, seq)
	) STRICT;
	-- Append-only, enforced.
	CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
		BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
	CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
		BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;`,
	// 2: the notification outbox (rewind.OutboxStore). It stores notifier names,
	// never their URLs, keys or passwords.
	`CREATE TABLE outbox (
		id           INTEGER PRIMARY KEY AUTOINCREMENT, -- publication order
		notifier     TEXT NOT NULL,
		dedup_key    TEXT NOT NULL UNIQUE,  -- notifier and event key: one notice per event and notifier
		kind         TEXT NOT NULL,
		event        TEXT NOT NULL,         -- the rewind.Event as JSON
		state        TEXT NOT NULL,         -- pending | delivered | failed | expired
		created      TEXT NOT NULL,         -- UTC, fixed-width RFC 3339
		next_attempt TEXT NOT NULL,
		attempts     INTEGER NOT NULL,
		last_error   TEXT NOT NULL,
		done         TEXT
	) STRICT;
	-- Heads: the oldest pending notice of each notifier.
	CREATE INDEX outbox_pending ON outbox(notifier, id) WHERE state = 'pending';`,
	// 3: claims on notices (rewind.OutboxStore.Claim): who attempts a
	// notice now, and until when.
	`ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE outbox ADD COLUMN claimed_until TEXT;`,
}

// migrate brings the schema to the latest version in one write transaction, so
// that processes opening a new file at once migrate it once.
func migrate(ctx context.Context, w *sql.DB) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d: refusing to open", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating the schema to version %d: %w", i+1, err)
		}
	}
	if v < len(migrations) {
		// PRAGMA takes no parameters; the value is a constant.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
			return fmt.Errorf("setting the schema version: %w", err)
		}
	}
	return tx.Commit()
}
