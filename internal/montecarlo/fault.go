package montecarlo

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

const (
	// Settle is how long every fault case stays healthy after the warm-up,
	// so that each trigger starts from a full healthy window.
	Settle = 5 * time.Minute
	// Horizon is how long after the fault a run is replayed: a fault not
	// rolled back within it is missed.
	Horizon = time.Hour
	// phases is the number of whole seconds over which the fault's start
	// is spread: one evaluation interval of the policies (30s).
	phases = 30
)

// FaultCase is a canary that goes bad: it must be rolled back, soon.
type FaultCase struct {
	Name  string
	RPS   float64        // canary requests per second
	Fault scenario.Fault // Kind and Value; At is set per run
	// Tweak changes the reference system (scenario.Healthy); nil keeps it.
	Tweak func(*scenario.Config)
	// Within is the bar on the median time from the fault to the rollback;
	// 0: no bar on the time, the canary need only be rolled back within
	// the Horizon.
	Within time.Duration
	// SlowOutOfReach and MissedOutOfReach, when set, say why the case's bar
	// on the median time, or on none missed within the Horizon, cannot be
	// met by the rules measured under the seed's holds: the table reports
	// the measurement and the reason, and TestQualityBars does not fail on
	// them.
	SlowOutOfReach, MissedOutOfReach string
}

// FaultResult is the detection of one fault case.
type FaultResult struct {
	Case  FaultCase
	Rules string
	Runs  int
	// Times are the times from the fault to the first rollback at or after
	// it, of the runs rolled back within the Horizon, ascending.
	Times  []time.Duration
	Missed int // runs not rolled back within the Horizon
	// Early is the runs rolled back before the fault: false rollbacks of
	// the healthy canary during the settling period.
	Early     int
	ByTrigger map[string]int // the first rollback's firing triggers
}

// Quantile is the q-quantile (lower) of the time to rollback over all runs,
// the missed ones counting as never; ok is false when it is never.
func (r FaultResult) Quantile(q float64) (d time.Duration, ok bool) {
	if r.Runs == 0 {
		return 0, false
	}
	k := max(int(math.Ceil(q*float64(r.Runs)))-1, 0)
	if k >= len(r.Times) {
		return 0, false
	}
	return r.Times[k], true
}

// Median is the median time to rollback, the missed runs counting as never.
func (r FaultResult) Median() (time.Duration, bool) { return r.Quantile(0.5) }

// detection is one run's outcome.
type detection struct {
	after  time.Duration // -1: missed
	early  bool
	firing []string
}

// MeasureFault replays runs independent histories of c: healthy for WarmUp
// and Settle, then the fault from a random second of the next evaluation
// interval, replayed from the warm-up to Horizon after the fault. The fault
// applies to every scrape at or after its start, so its first faulty scrape
// interval begins up to one scrape (15 s) before it.
func MeasureFault(ctx context.Context, rules Rules, c FaultCase, runs int, opt Options) (FaultResult, error) {
	from := Start.Add(WarmUp)
	ds, err := parallel(ctx, runs, opt.workers(), func(ctx context.Context, i int) (detection, error) {
		seed := seedOf(opt.Seed, "fault/"+c.Name, i)
		phase := time.Duration(rand.New(rand.NewPCG(seed, 0xfa17)).IntN(phases)) * time.Second
		at := from.Add(Settle + phase)
		to := at.Add(Horizon)
		cfg := scenario.Healthy(Start, to.Sub(Start), c.RPS, seed)
		if c.Tweak != nil {
			c.Tweak(&cfg)
		}
		cfg.Fault = c.Fault
		cfg.Fault.At = at
		sr, err := replay(ctx, cfg, rules, from, to)
		if err != nil {
			return detection{}, err
		}
		opt.ran()
		d := detection{after: -1, early: len(sr.Rollbacks) > 0 && sr.Rollbacks[0].At.Before(at)}
		for _, e := range sr.Rollbacks {
			if !e.At.Before(at) {
				d.after, d.firing = e.At.Sub(at), e.Firing
				break
			}
		}
		return d, nil
	})
	if err != nil {
		return FaultResult{}, err
	}
	r := FaultResult{Case: c, Rules: rules.Name, Runs: runs, ByTrigger: map[string]int{}}
	for _, d := range ds {
		if d.early {
			r.Early++
		}
		if d.after < 0 {
			r.Missed++
			continue
		}
		r.Times = append(r.Times, d.after)
		for _, t := range d.firing {
			r.ByTrigger[t]++
		}
	}
	slices.Sort(r.Times)
	return r, nil
}
