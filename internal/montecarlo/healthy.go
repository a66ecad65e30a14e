package montecarlo

import (
	"context"
	"time"

	"github.com/rewind-sre/rewind/internal/scenario"
)

// HealthyCase is a canary as good as its baseline: it must never be rolled
// back.
type HealthyCase struct {
	Name string
	RPS  float64 // canary requests per second
	// Tweak changes the reference system (scenario.Healthy: baseline 2 pods
	// at 20 req/s, both sides at 0.5 % errors); nil keeps it.
	Tweak func(*scenario.Config)
}

// HealthyResult counts the would-be rollbacks of one healthy case.
type HealthyResult struct {
	Case        HealthyCase
	Rules       string
	CanaryHours int
	Rollbacks   int            // every rollback episode
	RolledBack  int            // canary-hours with at least one episode
	ByTrigger   map[string]int // episodes by firing trigger (one may name several)
}

// PerHour is the false rollbacks per canary-hour.
func (r HealthyResult) PerHour() float64 {
	if r.CanaryHours == 0 {
		return 0
	}
	return float64(r.Rollbacks) / float64(r.CanaryHours)
}

// MeasureHealthy replays hours independent canary-hours of c: each a history
// of WarmUp plus one hour, replayed over the hour after the warm-up.
func MeasureHealthy(ctx context.Context, rules Rules, c HealthyCase, hours int, opt Options) (HealthyResult, error) {
	from, to := Start.Add(WarmUp), Start.Add(WarmUp+time.Hour)
	counts, err := parallel(ctx, hours, opt.workers(), func(ctx context.Context, i int) ([][]string, error) {
		cfg := scenario.Healthy(Start, to.Sub(Start), c.RPS, seedOf(opt.Seed, "healthy/"+c.Name, i))
		if c.Tweak != nil {
			c.Tweak(&cfg)
		}
		sr, err := replay(ctx, cfg, rules, from, to)
		if err != nil {
			return nil, err
		}
		opt.ran()
		episodes := make([][]string, len(sr.Rollbacks))
		for k, e := range sr.Rollbacks {
			episodes[k] = e.Firing
		}
		return episodes, nil
	})
	if err != nil {
		return HealthyResult{}, err
	}
	r := HealthyResult{Case: c, Rules: rules.Name, CanaryHours: hours, ByTrigger: map[string]int{}}
	for _, episodes := range counts {
		r.Rollbacks += len(episodes)
		if len(episodes) > 0 {
			r.RolledBack++
		}
		for _, firing := range episodes {
			for _, t := range firing {
				r.ByTrigger[t]++
			}
		}
	}
	return r, nil
}
