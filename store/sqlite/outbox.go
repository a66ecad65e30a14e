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

var _ rewind.OutboxStore = (*Store)(nil)

// ErrNoNotice: no notice with that id in the outbox.
var ErrNoNotice = rewind.ErrNoticeNotFound

// Enqueue records the notices whose key is new, in one transaction; see
// rewind.OutboxStore.
func (s *Store) Enqueue(ctx context.Context, ns []rewind.Notice) (int, error) {
	added := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i := range ns {
			n := &ns[i]
			if n.Notifier == "" || n.Key == "" {
				return errors.New("a notice needs a notifier and a key")
			}
			event, err := json.Marshal(n.Event)
			if err != nil {
				return fmt.Errorf("encoding the event of notice %s: %w", n.Key, err)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO outbox
				(notifier, dedup_key, kind, event, state, created, next_attempt, attempts, last_error, done)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING`,
				n.Notifier, n.Key, string(n.Event.Kind), string(event), string(orState(n.State)),
				formatTime(n.Created), formatTime(n.NextAttempt), n.Attempts, n.LastError, nullTime(n.Done))
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil {
				return err
			} else if k == 1 {
				added++
				if n.ID, err = res.LastInsertId(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: enqueueing notices: %w", err)
	}
	return added, nil
}

func orState(s rewind.NoticeState) rewind.NoticeState {
	if s == "" {
		return rewind.NoticePending
	}
	return s
}

// Heads returns the oldest pending notice of each notifier, oldest first.
func (s *Store) Heads(ctx context.Context) ([]rewind.Notice, error) {
	return s.notices(ctx, `SELECT `+noticeColumns+` FROM outbox
		WHERE id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY notifier)
		ORDER BY id`)
}

// Claim reserves pending notice id for an attempt by owner until until;
// see rewind.OutboxStore.
func (s *Store) Claim(ctx context.Context, id int64, owner string, now, until time.Time) error {
	if owner == "" {
		return errors.New("sqlite store: a claim needs an owner")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET claimed_by = ?, claimed_until = ?
			WHERE id = ? AND state = 'pending' AND (claimed_by IN ('', ?) OR claimed_until IS NULL OR claimed_until <= ?)`,
			owner, formatTime(until), id, owner, formatTime(now))
		if err != nil {
			return err
		}
		return s.noticeChanged(ctx, tx, res, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite store: claiming notice %d: %w", id, err)
	}
	return nil
}

// noticeChanged is nil when res changed a row, else ErrNoNotice or
// ErrNoticeClaimed depending on whether notice id exists.
func (s *Store) noticeChanged(ctx context.Context, tx *sql.Tx, res sql.Result, id int64) error {
	k, err := res.RowsAffected()
	if err != nil || k > 0 {
		return err
	}
	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE id = ?`, id).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNoNotice
	case err != nil:
		return err
	}
	return rewind.ErrNoticeClaimed
}

// Record writes the outcome of an attempt at notice id and clears its
// claim; see rewind.OutboxStore.
func (s *Store) Record(ctx context.Context, id int64, o rewind.NoticeOutcome) error {
	var next sql.NullString
	if o.State == rewind.NoticePending {
		next = nullTime(o.NextAttempt)
	}
	var done sql.NullString
	if o.State != rewind.NoticePending {
		done = nullTime(o.At)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = attempts + 1,
			last_error = ?, next_attempt = COALESCE(?, next_attempt), done = ?, claimed_by = '', claimed_until = NULL
			WHERE id = ? AND (? = '' OR claimed_by IN ('', ?))`,
			string(o.State), o.Error, next, done, id, o.Owner, o.Owner)
		if err != nil {
			return err
		}
		return s.noticeChanged(ctx, tx, res, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite store: recording notice %d: %w", id, err)
	}
	return nil
}

// Notices lists notices matching f, oldest first.
func (s *Store) Notices(ctx context.Context, f rewind.NoticeFilter) ([]rewind.Notice, error) {
	var (
		where []string
		args  []any
	)
	if f.Notifier != "" {
		where, args = append(where, "notifier = ?"), append(args, f.Notifier)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.RollbackID != "" {
		where, args = append(where, "json_extract(event, '$.rollbackId') = ?"), append(args, f.RollbackID)
	}
	q := `SELECT ` + noticeColumns + ` FROM outbox`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	return s.notices(ctx, q, args...)
}

const noticeColumns = `id, notifier, dedup_key, event, state, created, next_attempt, attempts, last_error, done, claimed_by, claimed_until`

func (s *Store) notices(ctx context.Context, q string, args ...any) ([]rewind.Notice, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []rewind.Notice
	for rows.Next() {
		var (
			n                           rewind.Notice
			event, state, created, next string
			done, claimedUntil          sql.NullString
		)
		if err := rows.Scan(&n.ID, &n.Notifier, &n.Key, &event, &state, &created, &next, &n.Attempts, &n.LastError, &done, &n.ClaimedBy, &claimedUntil); err != nil {
			return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
		}
		n.State = rewind.NoticeState(state)
		if err := json.Unmarshal([]byte(event), &n.Event); err != nil {
			return nil, fmt.Errorf("sqlite store: notice %d: decoding its event: %w", n.ID, err)
		}
		if n.Created, err = time.Parse(timeFormat, created); err != nil {
			return nil, fmt.Errorf("sqlite store: notice %d: %w", n.ID, err)
		}
		if n.NextAttempt, err = time.Parse(timeFormat, next); err != nil {
			return nil, fmt.Errorf("sqlite store: notice %d: %w", n.ID, err)
		}
		if done.Valid {
			if n.Done, err = time.Parse(timeFormat, done.String); err != nil {
				return nil, fmt.Errorf("sqlite store: notice %d: %w", n.ID, err)
			}
		}
		if claimedUntil.Valid {
			if n.ClaimedUntil, err = time.Parse(timeFormat, claimedUntil.String); err != nil {
				return nil, fmt.Errorf("sqlite store: notice %d: %w", n.ID, err)
			}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
	}
	return out, nil
}
