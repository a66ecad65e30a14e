package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	rewind "github.com/rewind-sre/rewind"
)

// timeFormat is RFC 3339 in UTC with a fixed number of digits, so that
// stored times sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func nullTime(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: formatTime(t), Valid: true}
}

// Create records rb, running, with a first journal entry; see rewind.RollbackStore.
func (s *Store) Create(ctx context.Context, rb *rewind.Rollback) error {
	switch {
	case rb.ID == "" || rb.System == "":
		return errors.New("sqlite store: a rollback needs an id and a system")
	case rewind.ValidRollbackID(rb.ID) != nil:
		return fmt.Errorf("sqlite store: %w", rewind.ValidRollbackID(rb.ID))
	case rb.State != rewind.RollbackRunning:
		return fmt.Errorf("sqlite store: creating rollback %s in state %q, want %q", rb.ID, rb.State, rewind.RollbackRunning)
	}
	record, err := json.Marshal(rb)
	if err != nil {
		return fmt.Errorf("sqlite store: encoding rollback %s: %w", rb.ID, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// The write lock is held from BEGIN IMMEDIATE, so nothing can come
		// between this check and the insert, in this process or another.
		var holder string
		err := tx.QueryRowContext(ctx, `SELECT id FROM rollbacks WHERE system = ? AND state = 'running'`, rb.System).Scan(&holder)
		switch {
		case err == nil:
			return &rewind.InProgressError{System: rb.System, Holder: holder, Where: "store"}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO rollbacks (id, system, state, started, ended, record) VALUES (?, ?, ?, ?, ?, ?)`,
			rb.ID, rb.System, string(rb.State), formatTime(rb.Started), nullTime(rb.Ended), string(record)); err != nil {
			return err
		}
		_, err = appendEntry(ctx, tx, rb.ID, rewind.JournalEntry{
			At:     rb.Started,
			State:  string(rewind.RollbackRunning),
			Detail: fmt.Sprintf("created by %s: %s", rb.Requester, rb.Reason),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: creating rollback %s: %w", rb.ID, err)
	}
	s.see(rb.ID, 1)
	return nil
}

// see notes the last journal seq this handle knows of rollback id.
func (s *Store) see(id string, seq int64) {
	s.mu.Lock()
	s.seen[id] = seq
	s.mu.Unlock()
}

func (s *Store) known(id string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, ok := s.seen[id]
	return seq, ok
}

// Save replaces rb's record and appends event to its journal, atomically;
// see rewind.RollbackStore.
func (s *Store) Save(ctx context.Context, rb *rewind.Rollback, event rewind.JournalEntry) error {
	record, err := json.Marshal(rb)
	if err != nil {
		return fmt.Errorf("sqlite store: encoding rollback %s: %w", rb.ID, err)
	}
	var seq int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rollbacks SET state = ?, ended = ?, record = ? WHERE id = ?`,
			string(rb.State), nullTime(rb.Ended), string(record), rb.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return rewind.ErrRollbackNotFound
		}
		if want, ok := s.known(rb.ID); ok {
			var last int64
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM journal WHERE rollback_id = ?`, rb.ID).Scan(&last); err != nil {
				return err
			}
			if last != want {
				return fmt.Errorf("%w (entry %d, this process last wrote %d)", rewind.ErrJournalMoved, last, want)
			}
		}
		seq, err = appendEntry(ctx, tx, rb.ID, event)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: saving rollback %s: %w", rb.ID, err)
	}
	s.see(rb.ID, seq)
	return nil
}

// appendEntry appends ev to id's journal with the next sequence number,
// which it returns.
func appendEntry(ctx context.Context, tx *sql.Tx, id string, ev rewind.JournalEntry) (int64, error) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	var facts sql.NullString
	if len(ev.Facts) > 0 {
		b, err := json.Marshal(ev.Facts)
		if err != nil {
			return 0, err
		}
		facts = sql.NullString{String: string(b), Valid: true}
	}
	var seq int64
	err := tx.QueryRowContext(ctx, `INSERT INTO journal
		(rollback_id, seq, at, step, state, attempt, detail, error, facts, duration_ns)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? FROM journal WHERE rollback_id = ?
		RETURNING seq`,
		id, formatTime(ev.At), string(ev.Step), ev.State, ev.Attempt, ev.Detail, ev.Error, facts, int64(ev.Duration), id).Scan(&seq)
	return seq, err
}

// Get returns the stored record of rollback id.
func (s *Store) Get(ctx context.Context, id string) (*rewind.Rollback, error) {
	var record string
	err := s.r.QueryRowContext(ctx, `SELECT record FROM rollbacks WHERE id = ?`, id).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite store: %w: %s", rewind.ErrRollbackNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading rollback %s: %w", id, err)
	}
	return decode(record)
}

// List returns rollbacks matching opts, newest first.
func (s *Store) List(ctx context.Context, opts rewind.ListOptions) ([]*rewind.Rollback, error) {
	var (
		where []string
		args  []any
	)
	if opts.System != "" {
		where, args = append(where, "system = ?"), append(args, opts.System)
	}
	if opts.State != "" {
		where, args = append(where, "state = ?"), append(args, string(opts.State))
	}
	q := `SELECT record FROM rollbacks`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY started DESC, id DESC`
	if opts.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, opts.Limit)
	}
	return s.query(ctx, q, args...)
}

// Unfinished returns the running rollbacks, oldest first.
// This handle's later Saves of them go through (see rewind.RollbackStore).
func (s *Store) Unfinished(ctx context.Context) ([]*rewind.Rollback, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.record, (SELECT COALESCE(MAX(seq), 0) FROM journal j WHERE j.rollback_id = r.id)
		FROM rollbacks r WHERE r.state = 'running' ORDER BY r.started, r.id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing unfinished rollbacks: %w", err)
	}
	defer rows.Close()
	var out []*rewind.Rollback
	for rows.Next() {
		var (
			record string
			seq    int64
		)
		if err := rows.Scan(&record, &seq); err != nil {
			return nil, fmt.Errorf("sqlite store: listing unfinished rollbacks: %w", err)
		}
		rb, err := decode(record)
		if err != nil {
			return nil, err
		}
		s.see(rb.ID, seq)
		out = append(out, rb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing unfinished rollbacks: %w", err)
	}
	return out, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]*rewind.Rollback, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing rollbacks: %w", err)
	}
	defer rows.Close()
	var out []*rewind.Rollback
	for rows.Next() {
		var record string
		if err := rows.Scan(&record); err != nil {
			return nil, fmt.Errorf("sqlite store: listing rollbacks: %w", err)
		}
		rb, err := decode(record)
		if err != nil {
			return nil, err
		}
		out = append(out, rb)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing rollbacks: %w", err)
	}
	return out, nil
}

func decode(record string) (*rewind.Rollback, error) {
	var rb rewind.Rollback
	if err := json.Unmarshal([]byte(record), &rb); err != nil {
		return nil, fmt.Errorf("sqlite store: decoding a rollback record: %w", err)
	}
	return &rb, nil
}

// Journal returns rollback id's journal in the order it was written.
func (s *Store) Journal(ctx context.Context, id string) ([]rewind.JournalEntry, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // one snapshot for both reads
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading the journal of %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM rollbacks WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite store: %w: %s", rewind.ErrRollbackNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading the journal of %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, at, step, state, attempt, detail, error, facts, duration_ns
		FROM journal WHERE rollback_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading the journal of %s: %w", id, err)
	}
	defer rows.Close()
	var out []rewind.JournalEntry
	for rows.Next() {
		e := rewind.JournalEntry{RollbackID: id}
		var (
			at, step string
			facts    sql.NullString
			dur      int64
		)
		if err := rows.Scan(&e.Seq, &at, &step, &e.State, &e.Attempt, &e.Detail, &e.Error, &facts, &dur); err != nil {
			return nil, fmt.Errorf("sqlite store: reading the journal of %s: %w", id, err)
		}
		if e.At, err = time.Parse(timeFormat, at); err != nil {
			return nil, fmt.Errorf("sqlite store: journal of %s, entry %d: %w", id, e.Seq, err)
		}
		e.Step, e.Duration = rewind.StepName(step), time.Duration(dur)
		if facts.Valid {
			if err := json.Unmarshal([]byte(facts.String), &e.Facts); err != nil {
				return nil, fmt.Errorf("sqlite store: journal of %s, entry %d: %w", id, e.Seq, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: reading the journal of %s: %w", id, err)
	}
	return out, nil
}
