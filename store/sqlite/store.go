// Package sqlite is Rewind's durable store on SQLite (modernc.org/sqlite,
// pure Go): rollbacks and their append-only journal, and the notification
// outbox. It is the embedded store of the CLI, backtest, demo and a single
// serve outside a cluster; store/kubernetes is the one replicas share.
//
// The database runs in WAL mode with synchronous=FULL, so a write is on disk
// when it returns and readers never block the writer. Several processes may
// open the same file: each writes through one connection that takes the
// write lock when its transaction begins (BEGIN IMMEDIATE) and waits up to
// the busy timeout for another process's transaction to end.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"time"

	rewind "github.com/rewind-sre/rewind"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var _ rewind.Store = (*Store)(nil)

// BusyTimeout is how long a write waits for another connection's or
// process's write transaction before it fails with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// Store is a rewind.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	mu   sync.Mutex
	seen map[string]int64 // rollback id -> the journal's last seq this handle wrote or handed out
}

// Open opens (creating it if needed) the store at path and migrates its
// schema to the current version. A database written by a newer Rewind, with
// a schema this one does not know, is refused.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite store: needs a file path")
	}
	busy := fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds())
	common := url.Values{"_pragma": {busy, "foreign_keys(1)"}}

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous(FULL)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(path, wq))
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return &Store{w: w, r: r, seen: map[string]int64{}}, nil
}

// Close closes the store's connections.
func (s *Store) Close() error {
	return errors.Join(s.w.Close(), s.r.Close())
}

func dsn(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: q.Encode()}
	return u.String()
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE), committing if fn
// returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
