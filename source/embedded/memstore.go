package embedded

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// The storage under the PromQL engine: float series in memory, each in
// Gorilla-compressed (XOR) chunks of chunkSamples samples, the encoding of
// Prometheus's own TSDB, behind the narrow storage.Queryable interface the
// engine reads through. It replaces the TSDB head, which drags in
// prometheus/config and with it the AWS, Azure and Google Cloud SDKs.

// chunkSamples is the number of samples per chunk, Prometheus's target.
const chunkSamples = 120

// memSeries is one series: closed chunks (immutable) and the open one.
type memSeries struct {
	lset   labels.Labels
	closed []chunks.Meta
	open   *chunkenc.XORChunk
	app    chunkenc.Appender
	openT  int64 // min time of the open chunk
	lastT  int64 // time of the newest sample; math.MinInt64 when none
	lastV  float64
}

// append adds a sample newer than the last one; the caller holds the
// store's write lock and has checked the order.
func (s *memSeries) append(t int64, v float64) {
	if s.open == nil || s.open.NumSamples() >= chunkSamples {
		if s.open != nil {
			s.closed = append(s.closed, chunks.Meta{Chunk: s.open, MinTime: s.openT, MaxTime: s.lastT})
		}
		s.open = chunkenc.NewXORChunk()
		app, err := s.open.Appender()
		if err != nil {
			panic(err) // a new XOR chunk always has an appender
		}
		s.app, s.openT = app, t
	}
	s.app.Append(0, t, v)
	s.lastT, s.lastV = t, v
}

// order checks that (t, v) may follow the series' last sample: nil when
// newer, errSkip for an exact repeat of the last sample (dropped, as the
// TSDB does), else the TSDB's errors.
func (s *memSeries) order(t int64, v float64) error {
	switch {
	case t > s.lastT:
		return nil
	case t == s.lastT && math.Float64bits(v) == math.Float64bits(s.lastV):
		return errSkip
	case t == s.lastT:
		return storage.ErrDuplicateSampleForTimestamp
	}
	return storage.ErrOutOfOrderSample
}

// errSkip marks a sample that repeats the last one exactly.
var errSkip = errorString("repeated sample")

type errorString string

func (e errorString) Error() string { return string(e) }

// samples decodes the samples of s in [mint, maxt] (the caller holds the
// read lock, so that no append is under way).
func (s *memSeries) samples(mint, maxt int64) (floatSamples, error) {
	var out floatSamples
	var it chunkenc.Iterator
	add := func(c chunkenc.Chunk, cmin, cmax int64) error {
		if cmax < mint || cmin > maxt {
			return nil
		}
		it = c.Iterator(it)
		for vt := it.Seek(mint); vt == chunkenc.ValFloat; vt = it.Next() {
			t, v := it.At()
			if t > maxt {
				break
			}
			out = append(out, fsample{t, v})
		}
		return it.Err()
	}
	for _, c := range s.closed {
		if err := add(c.Chunk, c.MinTime, c.MaxTime); err != nil {
			return nil, err
		}
	}
	if s.open != nil {
		if err := add(s.open, s.openT, s.lastT); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// memStore holds every series, indexed by label hash and by label value.
type memStore struct {
	mu       sync.RWMutex
	byHash   map[uint64][]*memSeries
	postings map[string]map[string][]*memSeries // name → value → series
	all      []*memSeries
	mint     int64 // of every committed sample; math.MaxInt64 when empty
	maxt     int64
}

func newMemStore() *memStore {
	return &memStore{byHash: map[uint64][]*memSeries{}, postings: map[string]map[string][]*memSeries{},
		mint: math.MaxInt64, maxt: math.MinInt64}
}

// get returns the series of lset, or nil (read or write lock held).
func (m *memStore) get(lset labels.Labels, hash uint64) *memSeries {
	for _, s := range m.byHash[hash] {
		if labels.Equal(s.lset, lset) {
			return s
		}
	}
	return nil
}

// getOrCreate returns the series of lset, creating it (write lock held).
func (m *memStore) getOrCreate(lset labels.Labels, hash uint64) *memSeries {
	if s := m.get(lset, hash); s != nil {
		return s
	}
	s := &memSeries{lset: lset, lastT: math.MinInt64}
	m.byHash[hash] = append(m.byHash[hash], s)
	m.all = append(m.all, s)
	lset.Range(func(l labels.Label) {
		vs := m.postings[l.Name]
		if vs == nil {
			vs = map[string][]*memSeries{}
			m.postings[l.Name] = vs
		}
		vs[l.Value] = append(vs[l.Value], s)
	})
	return s
}

// add appends one sample of lset (write lock held): nil, or the ordering
// error (an exact repeat of the last sample is dropped without one).
func (m *memStore) add(lset labels.Labels, hash uint64, t int64, v float64) error {
	s := m.getOrCreate(lset, hash)
	switch err := s.order(t, v); err {
	case nil:
	case errSkip:
		return nil
	default:
		return err
	}
	s.append(t, v)
	m.mint, m.maxt = min(m.mint, t), max(m.maxt, t)
	return nil
}

// candidates are the series a selection needs to look at: those of the
// most selective equality matcher's posting list, else all.
func (m *memStore) candidates(ms []*labels.Matcher) []*memSeries {
	best := m.all
	for _, mt := range ms {
		if mt.Type != labels.MatchEqual || mt.Value == "" {
			continue
		}
		if l := m.postings[mt.Name][mt.Value]; len(l) < len(best) {
			best = l
		}
	}
	return best
}

// querier reads the store over [mint, maxt] for the PromQL engine.
type querier struct {
	m          *memStore
	mint, maxt int64
}

var _ storage.Querier = (*querier)(nil)

// Select decodes the samples of every matching series in the querier's
// range (narrowed by the hints), so that the engine reads a consistent
// snapshot while appends go on.
func (q *querier) Select(_ context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	q.m.mu.RLock()
	var out []storage.Series
	for _, s := range q.m.candidates(ms) {
		if !matches(s.lset, ms) || s.lastT < mint {
			continue
		}
		smp, err := s.samples(mint, maxt)
		if err != nil {
			q.m.mu.RUnlock()
			return storage.ErrSeriesSet(err)
		}
		if len(smp) > 0 {
			out = append(out, &series{lset: s.lset, samples: smp})
		}
	}
	q.m.mu.RUnlock()
	if sortSeries {
		sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
	}
	return &selection{list: out, i: -1}
}

func matches(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (q *querier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q.m.mu.RLock()
	defer q.m.mu.RUnlock()
	seen := map[string]bool{}
	for _, s := range q.m.candidates(ms) {
		if v := s.lset.Get(name); v != "" && matches(s.lset, ms) {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil, nil
}

func (q *querier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q.m.mu.RLock()
	defer q.m.mu.RUnlock()
	seen := map[string]bool{}
	for _, s := range q.m.candidates(ms) {
		if matches(s.lset, ms) {
			s.lset.Range(func(l labels.Label) { seen[l.Name] = true })
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil, nil
}

func (q *querier) Close() error { return nil }

// selection iterates over a selection.
type selection struct {
	list []storage.Series
	i    int
}

func (s *selection) Next() bool                        { s.i++; return s.i < len(s.list) }
func (s *selection) At() storage.Series                { return s.list[s.i] }
func (s *selection) Err() error                        { return nil }
func (s *selection) Warnings() annotations.Annotations { return nil }

// series is one selected series and its samples.
type series struct {
	lset    labels.Labels
	samples floatSamples
}

func (s *series) Labels() labels.Labels { return s.lset }

func (s *series) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(s.samples)
}

// floatSamples are decoded float samples (storage.Samples).
type floatSamples []fsample

func (s floatSamples) Get(i int) chunks.Sample { return &s[i] }
func (s floatSamples) Len() int                { return len(s) }

// fsample is one float sample (chunks.Sample).
type fsample struct {
	t int64
	f float64
}

func (s *fsample) T() int64                      { return s.t }
func (s *fsample) ST() int64                     { return 0 }
func (s *fsample) F() float64                    { return s.f }
func (s *fsample) H() *histogram.Histogram       { return nil }
func (s *fsample) FH() *histogram.FloatHistogram { return nil }
func (s *fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s *fsample) Copy() chunks.Sample           { c := *s; return &c }
