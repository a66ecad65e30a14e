package embedded

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// LineError is an error at one line of an OpenMetrics input.
type LineError struct {
	File string // set by LoadFile; empty for LoadOpenMetrics
	Line int    // 1-based
	Err  error
}

func (e *LineError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// seriesBuf collects the samples of one series in file order, with the line
// of each sample for error messages.
type seriesBuf struct {
	lset     labels.Labels
	ts       []int64
	vs       []float64
	lines    []uint32
	unsorted bool // some timestamp was <= its predecessor
}

func (s *seriesBuf) add(t int64, v float64, line int) {
	if n := len(s.ts); n > 0 && t <= s.ts[n-1] {
		s.unsorted = true
	}
	s.ts = append(s.ts, t)
	s.vs = append(s.vs, v)
	s.lines = append(s.lines, uint32(line))
}

// sort.Interface over the three parallel slices, by timestamp.
func (s *seriesBuf) Len() int           { return len(s.ts) }
func (s *seriesBuf) Less(i, j int) bool { return s.ts[i] < s.ts[j] }
func (s *seriesBuf) Swap(i, j int) {
	s.ts[i], s.ts[j] = s.ts[j], s.ts[i]
	s.vs[i], s.vs[j] = s.vs[j], s.vs[i]
	s.lines[i], s.lines[j] = s.lines[j], s.lines[i]
}

// normalize sorts the samples by time, keeping file order among equal
// timestamps, and removes exact duplicates. A second sample with the same
// timestamp and a different value is an error at the later line.
func (s *seriesBuf) normalize() error {
	if !s.unsorted {
		return nil
	}
	sort.Stable(s)
	w := 1
	for r := 1; r < len(s.ts); r++ {
		if s.ts[r] != s.ts[w-1] {
			s.ts[w], s.vs[w], s.lines[w] = s.ts[r], s.vs[r], s.lines[r]
			w++
			continue
		}
		if math.Float64bits(s.vs[r]) != math.Float64bits(s.vs[w-1]) {
			return &LineError{Line: int(s.lines[r]), Err: fmt.Errorf(
				"%s: duplicate sample at %s with value %v, line %d has value %v",
				s.lset, fromMillis(s.ts[r]).Format("2006-01-02T15:04:05.000Z07:00"),
				s.vs[r], s.lines[w-1], s.vs[w-1])}
		}
	}
	s.ts, s.vs, s.lines = s.ts[:w], s.vs[:w], s.lines[:w]
	s.unsorted = false
	return nil
}

// seriesSet maps series to their buffers. A series is looked up first by its
// raw bytes in the input (no label parsing for every sample), then by its
// label set, so differently written copies of one series share one buffer.
type seriesSet struct {
	list   []*seriesBuf // in order of first appearance
	byRaw  map[string]*seriesBuf
	byHash map[uint64][]*seriesBuf
	lb     *labels.Builder
}

func newSeriesSet() *seriesSet {
	return &seriesSet{
		byRaw:  map[string]*seriesBuf{},
		byHash: map[uint64][]*seriesBuf{},
		lb:     labels.NewBuilder(labels.EmptyLabels()),
	}
}

// get returns the buffer of the series written as raw; parsed is called only
// for a raw form not seen before.
func (ss *seriesSet) get(raw []byte, parsed func() labels.Labels) (*seriesBuf, error) {
	if s, ok := ss.byRaw[string(raw)]; ok {
		return s, nil
	}
	ss.lb.Reset(parsed()) // Reset drops labels with empty values.
	lset := ss.lb.Labels()
	if err := validLabels(lset); err != nil {
		return nil, err
	}
	h := lset.Hash()
	var s *seriesBuf
	for _, c := range ss.byHash[h] {
		if labels.Equal(c.lset, lset) {
			s = c
			break
		}
	}
	if s == nil {
		s = &seriesBuf{lset: lset}
		ss.byHash[h] = append(ss.byHash[h], s)
		ss.list = append(ss.list, s)
	}
	ss.byRaw[string(raw)] = s
	return s, nil
}

// validLabels rejects label sets the store or PromQL cannot handle.
func validLabels(lset labels.Labels) error {
	if lset.Get(labels.MetricName) == "" {
		return fmt.Errorf("%s: missing metric name", lset)
	}
	if name, dup := lset.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("%s: label %q appears twice", lset, name)
	}
	if !lset.IsValid(model.UTF8Validation) {
		return fmt.Errorf("%s: invalid label name or value (not UTF-8)", lset)
	}
	return nil
}

// parseOpenMetrics parses a complete OpenMetrics input and returns its series
// with time-sorted, de-duplicated samples.
//
// Line numbers: the OpenMetrics parser consumes exactly one line per entry
// (blank lines and free comments are syntax errors, and _created series are
// not skipped), so the n-th entry is line n and an error is at the line after
// the last entry.
func parseOpenMetrics(b []byte) ([]*seriesBuf, error) {
	p := textparse.NewOpenMetricsParser(b, labels.NewSymbolTable())
	set := newSeriesSet()
	var lset labels.Labels
	parsed := func() labels.Labels {
		p.Labels(&lset)
		return lset
	}
	for line := 1; ; line++ {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &LineError{Line: line, Err: explainParseError(err)}
		}
		switch entry {
		case textparse.EntrySeries:
		case textparse.EntryHistogram:
			// OpenMetrics 1.0 text has no native histograms; be explicit anyway.
			return nil, &LineError{Line: line, Err: errors.New("native histogram samples are not supported")}
		default:
			continue // # TYPE, # HELP, # UNIT
		}
		raw, ts, v := p.Series()
		if ts == nil {
			return nil, &LineError{Line: line, Err: fmt.Errorf(
				"%s: sample has no timestamp (want: name{labels} value timestamp_seconds)", raw)}
		}
		if *ts < -maxAbsTimestamp || *ts > maxAbsTimestamp {
			return nil, &LineError{Line: line, Err: fmt.Errorf("%s: timestamp out of range", raw)}
		}
		s, err := set.get(raw, parsed)
		if err != nil {
			return nil, &LineError{Line: line, Err: err}
		}
		s.add(*ts, v, line)
	}
	for _, s := range set.list {
		if err := s.normalize(); err != nil {
			return nil, err
		}
	}
	return set.list, nil
}

// explainParseError adds a hint to parser errors with a common cause.
func explainParseError(err error) error {
	if strings.Contains(err.Error(), `\r`) {
		return fmt.Errorf("%w (CRLF line endings are not allowed; convert the file to LF)", err)
	}
	return err
}
