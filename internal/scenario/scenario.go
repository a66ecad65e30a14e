// Package scenario generates synthetic metric histories of a canary and its
// baseline — the seed's metric names, binomial request errors, lognormal
// latencies — with an optional fault injected into the canary, as OpenMetrics
// text that `promtool tsdb create-blocks-from openmetrics` and Rewind's
// embedded source both read. It drives the scenario tests, the backtest
// examples and the statistical judge's Monte Carlo.
package scenario

import (
	"fmt"
	"time"
)

// Fault kinds: the seed's eight failure modes, and the healthy oddities that
// must never roll back.
const (
	FaultNone           = ""
	FaultErrorRate      = "error-rate"      // canary errors → Fault.Value (default 10 %)
	FaultLatency        = "latency"         // canary latency × Fault.Value (default 3)
	FaultSuccessRate    = "success-rate"    // canary errors → 8 %: success < 95 %
	FaultThroughput     = "throughput"      // canary transactions × Fault.Value (default 0.3)
	FaultByzantine      = "byzantine"       // one ProBFT byzantine event
	FaultDAGCorruption  = "dag-corruption"  // DAG validation errors
	FaultMemory         = "memory"          // working set at 97 % of the limit
	FaultCircuitBreaker = "circuit-breaker" // 20 trips a minute
	FaultNoTraffic      = "no-traffic"      // the canary's requests stop
	FaultGap            = "gap"             // no samples at all for Fault.For
	FaultErrorBump      = "error-bump"      // canary errors at 20 % for Fault.For, then healthy
	FaultLatencySpread  = "latency-spread"  // canary p99 × Fault.Value (default 3), median unchanged
	FaultSparseErrors   = "sparse-errors"   // canary errors at Fault.Value a minute on average (default 1: mostly 0–2)
)

// Side describes one deployment (canary or baseline).
type Side struct {
	Instances  int     // pods, each with its own series
	RPS        float64 // requests per second, all instances together
	ErrorRate  float64 // probability that a request is a 5xx
	LatencyP50 float64 // seconds; latencies are lognormal
	LatencyCV  float64 // sigma of log latency
	TxPerSec   float64 // Bullshark transactions per second per instance
	MemoryFrac float64 // working set / limit
}

// Fault changes the canary from At on (for Fault.For, when set).
type Fault struct {
	Kind  string
	At    time.Time
	For   time.Duration // 0: until the end
	Value float64       // kind-specific magnitude; 0: the kind's default
}

// Config is one generated history.
type Config struct {
	Start    time.Time
	Duration time.Duration
	Scrape   time.Duration // default 15 s
	Seed     uint64
	Baseline Side
	Canary   Side
	NoCanary bool // the canary exports no series at all
	// CanaryFrom, when set, is when the canary starts: its pods export no
	// series before it and their counters start at zero then (a new
	// deployment; a fault At the same instant is its warm-up).
	CanaryFrom time.Time
	Fault      Fault
	// Labels are added to every series (e.g. system="s3"), so that the
	// histories of several systems can share one TSDB (WriteAll).
	Labels map[string]string
}

// Healthy returns the reference system: baseline 2 pods at 20 req/s,
// canary 1 pod at canaryRPS, both at 0.5 % errors and a 50 ms median.
func Healthy(start time.Time, d time.Duration, canaryRPS float64, seed uint64) Config {
	side := func(instances int, rps float64) Side {
		return Side{Instances: instances, RPS: rps, ErrorRate: 0.005, LatencyP50: 0.05, LatencyCV: 0.5, TxPerSec: 100, MemoryFrac: 0.6}
	}
	return Config{Start: start, Duration: d, Scrape: 15 * time.Second, Seed: seed, Baseline: side(2, 20), Canary: side(1, canaryRPS)}
}

// active reports whether the fault applies at t.
func (f Fault) active(t time.Time) bool {
	if f.Kind == FaultNone || t.Before(f.At) {
		return false
	}
	return f.For == 0 || t.Before(f.At.Add(f.For))
}

func (f Fault) value(def float64) float64 {
	if f.Value != 0 {
		return f.Value
	}
	return def
}

// Buckets are the latency histogram's upper bounds (seconds), +Inf implied.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// instance is one pod's cumulative counters.
type instance struct {
	version, name              string
	extra                      string // ,k="v" of Config.Labels
	ok, errs                   float64
	buckets                    []float64 // per-bucket (not cumulative) counts, +Inf last
	sum                        float64
	tx, byz, dag, trips        float64
	memFrac                    float64
	pendingByz, pendingDagErrs float64
}

// point is every series value of one instance at one scrape.
type point struct {
	t       time.Time
	ok, err float64
	cum     []float64
	count   float64
	sum     float64
	tx      float64
	byz     float64
	dag     float64
	trips   float64
	memWS   float64
}

const memLimit = 2 << 30

func (c *Config) validate() error {
	if c.Scrape <= 0 {
		c.Scrape = 15 * time.Second
	}
	if c.Duration <= 0 || c.Baseline.Instances <= 0 || (!c.NoCanary && c.Canary.Instances <= 0) {
		return fmt.Errorf("scenario: duration and instance counts must be positive")
	}
	return nil
}
