package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// commitBatch is the number of samples appended under the write lock at a
// time while loading.
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

// appendSeries appends each series' sorted samples, series after series,
// taking the write lock for commitBatch samples at a time, so that queries
// are not held up for a whole file. Buffers are released as they are
// appended, so the parsed copy and the stored one do not peak together.
func (db *DB) appendSeries(list []*seriesBuf) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	m := db.store
	pending := 0
	m.mu.Lock()
	defer func() { m.mu.Unlock() }()
	for i, s := range list {
		h := s.lset.Hash()
		for j, t := range s.ts {
			if err := m.add(s.lset, h, t, s.vs[j]); err != nil {
				return &LineError{Line: int(s.lines[j]), Err: fmt.Errorf("append %s: %w", s.lset, err)}
			}
			if pending++; pending == commitBatch {
				m.mu.Unlock()
				m.mu.Lock()
				pending = 0
			}
		}
		list[i] = nil
	}
	return nil
}
