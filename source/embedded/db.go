package embedded

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

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
	// years).
	maxAbsTimestamp = int64(1) << 50
	// subqueryStep is the step of a subquery without one ([30m:]); it is
	// Prometheus's default global evaluation interval.
	subqueryStep = time.Minute
)

// ErrClosed is returned by every method of a closed DB.
var ErrClosed = errors.New("embedded: database closed")

// Options configures a DB. The zero value is valid.
type Options struct {
	// Dir is not used: the DB holds its samples in memory.
	//
	// Deprecated: kept so that callers that set it still compile.
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

// DB is an in-memory time series store with the PromQL engine. Its methods
// are safe for concurrent use. Queries observe committed samples only.
type DB struct {
	opts   Options
	store  *memStore
	engine *promql.Engine
	logger *slog.Logger

	mu     sync.RWMutex // guards closed; held shared by every store access
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
		store:   newMemStore(),
		engine:  engine,
		logger:  logger,
		targets: map[string]*targetState{},
	}, nil
}

// Close waits for running queries and appends and releases the samples.
// Calling Close again returns nil.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if !db.closed {
		db.closed = true
		db.store = newMemStore()
	}
	return nil
}

// Bounds returns the time range of the samples in the DB; ok is false when
// the DB holds no sample (or is closed).
func (db *DB) Bounds() (mint, maxt time.Time, ok bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return time.Time{}, time.Time{}, false
	}
	db.store.mu.RLock()
	defer db.store.mu.RUnlock()
	if db.store.mint == math.MaxInt64 {
		return time.Time{}, time.Time{}, false
	}
	return fromMillis(db.store.mint), fromMillis(db.store.maxt), true
}

// querier opens a querier over the samples; it implements storage.Queryable.
func (db *DB) querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{m: db.store, mint: mint, maxt: maxt}, nil
}

// fromMillis converts a Prometheus timestamp to a UTC time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
