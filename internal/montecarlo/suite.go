package montecarlo

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

// Size is how much a suite replays.
type Size struct {
	CanaryHours int // healthy canary-hours per healthy case and policy
	Runs        int // runs per fault case and policy
}

// The sample (≥ 100 canary-hours per rate, ≥ 30 runs per case), the
// one TestQualityBars replays, and the one it replays with -short.
var (
	FullSize  = Size{CanaryHours: 100, Runs: 30}
	CISize    = Size{CanaryHours: 20, Runs: 20}
	ShortSize = Size{CanaryHours: 5, Runs: 5}
)

// Options configure a suite.
type Options struct {
	Size
	Seed    uint64
	Workers int // runs replayed at once; 0: GOMAXPROCS
	// Compare also replays the seed's rules (SeedRules) on every case.
	Compare bool
	// Progress, when set, receives a line per finished experiment.
	Progress io.Writer

	done *atomic.Int64 // replays finished
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (o Options) ran() {
	if o.done != nil {
		o.done.Add(1)
	}
}

// Results are a suite's measurements.
type Results struct {
	Options Options
	Healthy []HealthyResult
	Faults  []FaultResult
	Replays int64
	Elapsed time.Duration
}

// zeroErrors makes both sides error-free.
func zeroErrors(c *scenario.Config) { c.Baseline.ErrorRate, c.Canary.ErrorRate = 0, 0 }

// HealthyCases are the healthy canaries: the four canary rates
// against the reference baseline (20 req/s at 0.5 % errors), and a canary
// with no errors against an all-zero baseline.
func HealthyCases() []HealthyCase {
	return []HealthyCase{
		{Name: "0.2 req/s", RPS: 0.2},
		{Name: "1 req/s", RPS: 1},
		{Name: "5 req/s", RPS: 5},
		{Name: "50 req/s", RPS: 50},
		{Name: "2 req/s, 0 errors on both sides", RPS: 2, Tweak: zeroErrors},
	}
}

// FaultCases are the faults with their bars on the median time from
// the fault to the rollback.
func FaultCases() []FaultCase {
	errs := func(p float64) scenario.Fault { return scenario.Fault{Kind: scenario.FaultErrorRate, Value: p} }
	return []FaultCase{
		{Name: "10 % errors at 1 req/s", RPS: 1, Fault: errs(0.10), Within: 4 * time.Minute},
		{Name: "10 % errors at 5 req/s", RPS: 5, Fault: errs(0.10), Within: 4 * time.Minute},
		{Name: "10 % errors at 0.2 req/s", RPS: 0.2, Fault: errs(0.10), Within: 8 * time.Minute},
		{Name: "3 % errors at 5 req/s", RPS: 5, Fault: errs(0.03), Within: 7 * time.Minute},
		{Name: "3 % errors at 1 req/s", RPS: 1, Fault: errs(0.03), Within: 13 * time.Minute},
		{Name: "p99 × 3, same median, at 5 req/s", RPS: 5, Fault: scenario.Fault{Kind: scenario.FaultLatencySpread, Value: 3}, Within: 8 * time.Minute},
		{Name: "0–2 errors a minute at 2 req/s vs an all-zero baseline", RPS: 2,
			Fault: scenario.Fault{Kind: scenario.FaultSparseErrors, Value: 1}, Tweak: zeroErrors},
	}
}

// Run measures every case with the default policy (and, with
// opt.Compare, with the seed's rules).
func Run(ctx context.Context, opt Options) (*Results, error) {
	began := time.Now()
	opt.done = new(atomic.Int64)
	rules, err := contenders(opt.Compare)
	if err != nil {
		return nil, err
	}
	res := &Results{Options: opt}
	for _, c := range HealthyCases() {
		for _, r := range rules {
			h, err := MeasureHealthy(ctx, r, c, opt.CanaryHours, opt)
			if err != nil {
				return nil, fmt.Errorf("healthy %s, %s: %w", c.Name, r.Name, err)
			}
			res.Healthy = append(res.Healthy, h)
			opt.progress(began, "healthy %s, %s: %d rollbacks in %d canary-hours", c.Name, r.Name, h.Rollbacks, h.CanaryHours)
		}
	}
	for _, c := range FaultCases() {
		for _, r := range rules {
			f, err := MeasureFault(ctx, r, c, opt.Runs, opt)
			if err != nil {
				return nil, fmt.Errorf("fault %s, %s: %w", c.Name, r.Name, err)
			}
			res.Faults = append(res.Faults, f)
			m, ok := f.Median()
			opt.progress(began, "fault %s, %s: median %s, %d missed of %d", c.Name, r.Name, fmtMedian(m, ok), f.Missed, f.Runs)
		}
	}
	res.Replays, res.Elapsed = opt.done.Load(), time.Since(began)
	return res, nil
}

func contenders(compare bool) ([]Rules, error) {
	def, err := DefaultRules()
	if err != nil || !compare {
		return []Rules{def}, err
	}
	seed, err := SeedRules()
	return []Rules{def, seed}, err
}

func (o Options) progress(began time.Time, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%6.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
}
