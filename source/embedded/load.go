package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/prometheus/prometheus/storage"
)

// commitBatch is the number of samples appended per head commit while
// loading: large enough to amortise the commit, small enough to bound the
// appender's buffer.
const commitBatch = 1 << 16

// LoadOpenMetrics reads an OpenMetrics text input with timestamps (the
// format of `promtool tsdb create-blocks-from openmetrics`) and appends its
// samples. Parse errors are *LineError values and leave the DB unchanged; see
// the package documentation for the accepted format.
func (db *DB) LoadOpenMetrics(r io.Reader) error {
	b, err := readAll(r)
	if err != nil {
		return fmt.Errorf("embedded: read: %w", err)
	}
	return db.load(b)
}

// readAll is io.ReadAll with the buffer sized up front when r knows its
// length (bytes.Reader, strings.Reader, bytes.Buffer, regular files).
func readAll(r io.Reader) ([]byte, error) {
	var n int64
	switch v := r.(type) {
	case interface{ Len() int }:
		n = int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			n = fi.Size()
		}
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// LoadFile is LoadOpenMetrics on the file at path; a *LineError from it
// carries the path and reads as "path:line: message".
func (db *DB) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	err = db.load(b)
	if le, ok := errors.AsType[*LineError](err); ok {
		le.File = path
	}
	return err
}

func (db *DB) load(b []byte) error {
	list, err := parseOpenMetrics(b)
	if err != nil {
		return err
	}
	return db.appendSeries(list)
}

// appendSeries appends each series' sorted samples, series after series, in
// commits of commitBatch samples. The head's huge chunk range (see Open)
// makes the series order irrelevant. Buffers are released as they are
// appended, so the parsed copy and the head's copy do not peak together.
func (db *DB) appendSeries(list []*seriesBuf) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	ctx := context.Background()
	app := db.head.Appender(ctx)
	pending := 0
	for i, s := range list {
		var ref storage.SeriesRef
		for j, t := range s.ts {
			var err error
			if ref, err = app.Append(ref, s.lset, t, s.vs[j]); err != nil {
				lerr := &LineError{Line: int(s.lines[j]), Err: fmt.Errorf("append %s: %w", s.lset, err)}
				if rerr := app.Rollback(); rerr != nil {
					return errors.Join(lerr, rerr)
				}
				return lerr
			}
			if pending++; pending == commitBatch {
				if err := app.Commit(); err != nil {
					return fmt.Errorf("embedded: commit: %w", err)
				}
				app, pending = db.head.Appender(ctx), 0
			}
		}
		list[i] = nil
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("embedded: commit: %w", err)
	}
	return nil
}
