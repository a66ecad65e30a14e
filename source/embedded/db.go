package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/rewind-sre/rewind"
)

// Compile-time checks of the contracts this package implements.
var (
	_ rewind.Source      = (*DB)(nil)
	_ rewind.RangeSource = (*DB)(nil)
)

const (
	// DefaultLookbackDelta is Prometheus's default staleness lookback.
	DefaultLookbackDelta = 5 * time.Minute
	// DefaultQueryTimeout bounds one query when Options.QueryTimeout is zero.
	DefaultQueryTimeout = 30 * time.Second
	// DefaultMaxSamples is Prometheus's default --query.max-samples: a range
	// query over 30 d of 15 s data for hundreds of series fits.
	DefaultMaxSamples = 50_000_000

	// maxAbsTimestamp bounds accepted timestamps (±2^50 ms, about ±35,000
	// years), which keeps the head's window arithmetic below far from overflow.
	maxAbsTimestamp = int64(1) << 50
	// headChunkRange is the head's chunk range. Samples older than
	// maxt-chunkRange/2 are rejected by the head as out of bounds; with
	// 2^53 ms any two valid timestamps are closer than half of it, so any
	// series may be appended after any other regardless of age.
	headChunkRange = int64(1) << 53
	// headStripeSize is the head's series map stripe count (a power of 2).
	headStripeSize = 1 << 10
	// subqueryStep is the step of a subquery without one ([30m:]); it is
	// Prometheus's default global evaluation interval.
	subqueryStep = time.Minute
)

// ErrClosed is returned by every method of a closed DB.
var ErrClosed = errors.New("embedded: database closed")

// Options configures a DB. The zero value is valid.
type Options struct {
	// Dir is the parent of the DB's private temporary directory; empty means
	// os.TempDir(). The private directory is removed by Close.
	Dir string
	// LookbackDelta is how far back an instant selector looks for a sample;
	// zero means DefaultLookbackDelta.
	LookbackDelta time.Duration
	// QueryTimeout bounds each query in addition to the caller's context;
	// zero means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// MaxSamples is the most samples one query may hold in memory; zero means
	// DefaultMaxSamples.
	MaxSamples int
	// HTTPClient is used by Scrape; nil means http.DefaultClient. Bound the
	// duration of a scrape with the context passed to Scrape.
	HTTPClient *http.Client
	// Logger receives debug logs (PromQL info annotations); nil discards.
	Logger *slog.Logger
}

// DB is an in-process TSDB head with a PromQL engine. Its methods are safe for
// concurrent use. Queries observe committed samples only.
type DB struct {
	opts   Options
	dir    string
	head   *tsdb.Head
	engine *promql.Engine
	logger *slog.Logger

	mu     sync.RWMutex // guards closed; held shared by every head access
	closed bool

	scrapeMu sync.Mutex
	targets  map[string]*targetState // scrape staleness state, by target key
}

// Open creates an empty DB backed by a new temporary directory.
func Open(opts Options) (*DB, error) {
	if opts.LookbackDelta == 0 {
		opts.LookbackDelta = DefaultLookbackDelta
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.MaxSamples == 0 {
		opts.MaxSamples = DefaultMaxSamples
	}
	if opts.LookbackDelta < 0 || opts.QueryTimeout < 0 || opts.MaxSamples < 0 {
		return nil, errors.New("embedded: negative LookbackDelta, QueryTimeout or MaxSamples")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	logger := opts.Logger
	if logger == nil {
		logger = promslog.NewNopLogger()
	}

	dir, err := os.MkdirTemp(opts.Dir, "rewind-embedded-")
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	hopts := tsdb.DefaultHeadOptions()
	hopts.ChunkDirRoot = dir
	hopts.ChunkRange = headChunkRange
	// Backtests hold tens of series and the demo hundreds: a smaller series
	// hash map than Prometheus's default (sized for millions) opens faster.
	hopts.StripeSize = headStripeSize
	// The head logs its start-up at info level; only its warnings matter here.
	headLogger := slog.New(minLevel{logger.Handler(), slog.LevelWarn})
	head, err := tsdb.NewHead(nil, headLogger, nil, nil, hopts, nil)
	if err == nil {
		err = head.Init(math.MinInt64)
		if err != nil {
			err = errors.Join(err, head.Close())
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded: open head: %w", err), os.RemoveAll(dir))
	}

	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		MaxSamples:           opts.MaxSamples,
		Timeout:              opts.QueryTimeout,
		LookbackDelta:        opts.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return subqueryStep.Milliseconds()
		},
	})
	return &DB{
		opts:    opts,
		dir:     dir,
		head:    head,
		engine:  engine,
		logger:  logger,
		targets: map[string]*targetState{},
	}, nil
}

// Close waits for running queries and appends, releases the head and removes
// the DB's directory. Calling Close again returns nil.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	err := db.head.Close()
	return errors.Join(err, os.RemoveAll(db.dir))
}

// Bounds returns the time range of the samples in the DB; ok is false when
// the DB holds no sample (or is closed).
func (db *DB) Bounds() (mint, maxt time.Time, ok bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed || db.head.MinTime() == math.MaxInt64 {
		return time.Time{}, time.Time{}, false
	}
	return fromMillis(db.head.MinTime()), fromMillis(db.head.MaxTime()), true
}

// querier opens a querier over the head; it implements storage.Queryable.
func (db *DB) querier(mint, maxt int64) (storage.Querier, error) {
	return tsdb.NewBlockQuerier(tsdb.NewRangeHead(db.head, mint, maxt), mint, maxt)
}

// minLevel is a slog.Handler that drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// fromMillis converts a Prometheus timestamp to a UTC time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
