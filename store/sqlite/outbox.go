package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rewind-sre/rewind/notify"
)

var _ notify.Store = (*Store)(nil)

// ErrNoNotice: no notice with that id in the outbox.
var ErrNoNotice = errors.New("no such notice in the outbox")

// Enqueue records the notices whose key is new, in one transaction; see
// notify.Store.
func (s *Store) Enqueue(ctx context.Context, ns []notify.Notice) (int, error) {
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

func orState(s notify.State) notify.State {
	if s == "" {
		return notify.Pending
	}
	return s
}

// Heads returns the oldest pending notice of each notifier, oldest first.
func (s *Store) Heads(ctx context.Context) ([]notify.Notice, error) {
	return s.notices(ctx, `SELECT `+noticeColumns+` FROM outbox
		WHERE id IN (SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY notifier)
		ORDER BY id`)
}

// Record writes the outcome of an attempt at notice id; see notify.Store.
func (s *Store) Record(ctx context.Context, id int64, o notify.Outcome) error {
	var next sql.NullString
	if o.State == notify.Pending {
		next = nullTime(o.NextAttempt)
	}
	var done sql.NullString
	if o.State != notify.Pending {
		done = nullTime(o.At)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = attempts + 1,
			last_error = ?, next_attempt = COALESCE(?, next_attempt), done = ? WHERE id = ?`,
			string(o.State), o.Error, next, done, id)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return ErrNoNotice
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite store: recording notice %d: %w", id, err)
	}
	return nil
}

// Notices lists notices matching f, oldest first.
func (s *Store) Notices(ctx context.Context, f notify.Filter) ([]notify.Notice, error) {
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

const noticeColumns = `id, notifier, dedup_key, event, state, created, next_attempt, attempts, last_error, done`

func (s *Store) notices(ctx context.Context, q string, args ...any) ([]notify.Notice, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []notify.Notice
	for rows.Next() {
		var (
			n                           notify.Notice
			event, state, created, next string
			done                        sql.NullString
		)
		if err := rows.Scan(&n.ID, &n.Notifier, &n.Key, &event, &state, &created, &next, &n.Attempts, &n.LastError, &done); err != nil {
			return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
		}
		n.State = notify.State(state)
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
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: reading the outbox: %w", err)
	}
	return out, nil
}
